/// <reference lib="webworker" />
// Wiring only: the engine lives in src/engine (testable in Node).
import * as Comlink from 'comlink';
import { EmbedService, resultTransferables, type EmbedResult } from '../src/engine/service.ts';

class WorkerService extends EmbedService {
  override async embed(...args: Parameters<EmbedService['embed']>): Promise<EmbedResult> {
    const r = await super.embed(...args);
    return Comlink.transfer(r, resultTransferables(r));
  }
}

Comlink.expose(new WorkerService());
