/// <reference lib="webworker" />
// Wiring only: the onnxruntime-web (wasm) fallback service, exposed like workers/embed.worker.ts.
import * as Comlink from 'comlink';
import { OrtEmbedService } from './ort-service.ts';
import type { EmbedResult } from '../engine/service.ts';

class WorkerOrtService extends OrtEmbedService {
  override async embed(...args: Parameters<OrtEmbedService['embed']>): Promise<EmbedResult> {
    const r = await super.embed(...args);
    return Comlink.transfer(r, [r.embeddings.buffer]);
  }
}

Comlink.expose(new WorkerOrtService());
