/// <reference lib="webworker" />
// Wiring only: the index service lives in src/search/service.ts (testable in Node).
import * as Comlink from 'comlink';
import { SearchService } from '../src/search/service.ts';

class WorkerSearchService extends SearchService {
  // The exported file is the largest reply: hand its buffer over instead of copying it.
  override toBytes(): Uint8Array {
    const b = super.toBytes();
    return Comlink.transfer(b, [b.buffer as ArrayBuffer]);
  }
}

Comlink.expose(new WorkerSearchService());
