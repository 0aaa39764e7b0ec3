/// <reference lib="webworker" />
// Wiring only: the onnxruntime-web (wasm) service for backend 'ort-wasm' (src/client/ort-service.ts).
import * as Comlink from 'comlink';
import { OrtEmbedService } from '../src/client/ort-service.ts';
import type { EmbedResult } from '../src/engine/service.ts';
import { resultTransferables } from '../src/engine/transfer.ts';

class WorkerOrtService extends OrtEmbedService {
  override async embed(...args: Parameters<OrtEmbedService['embed']>): Promise<EmbedResult> {
    const r = await super.embed(...args);
    return Comlink.transfer(r, resultTransferables(r));
  }
}

Comlink.expose(new WorkerOrtService());
