// Drives e2e/pipeline.spec.ts: the same feature-extraction calls through transformers.js and through m3web's
// transformers.js-shaped pipeline (src/pipeline.ts), on the same model folder and the same ONNX export.
import { env, pipeline as tjsPipeline } from '@huggingface/transformers';
import { pipeline, type FeatureExtractionOptions, type FeatureExtractionPipeline, type PipelineOptions } from '../../src/pipeline.ts';

export interface TensorJson {
  dims: number[];
  data: number[];
  type: string;
}

export interface ErrorJson {
  error: { name: string; message: string };
}

const error = (e: unknown): ErrorJson => ({ error: { name: (e as Error).name, message: (e as Error).message } });

const TJS_ORT_DIST = '/node_modules/@huggingface/transformers/node_modules/onnxruntime-web/dist/';
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = '/models/'; // a path, not a URL (transformers.js 4.3 skips its local-file checks for URLs)
env.useBrowserCache = false;
env.backends.onnx.wasm!.wasmPaths = `${location.origin}${TJS_ORT_DIST}`;

// transformers.js types .data as any of its DataArrays; a float32 feature-extraction tensor holds a Float32Array.
const json = (t: { dims: readonly number[]; data: unknown; type: string }): TensorJson => ({ dims: [...t.dims], data: Array.from(t.data as ArrayLike<number>), type: t.type });

const api = {
  /** transformers.js itself (wasm EP, fp32) on /models/<fixture>/onnx/model.onnx. */
  async transformers(fixture: string, texts: string[], calls: FeatureExtractionOptions[]): Promise<TensorJson[]> {
    const extractor = await tjsPipeline('feature-extraction', fixture, { device: 'wasm', dtype: 'fp32' });
    try {
      const out: TensorJson[] = [];
      for (const o of calls) out.push(json(await extractor(texts, o as Parameters<typeof extractor>[1])));
      return out;
    } finally {
      await extractor.dispose();
    }
  },
  /** m3web's pipeline on the same calls (each with its own texts; options may add layers / dims); errors per call. */
  async m3web(fixture: string, calls: { texts: string | string[]; opts: FeatureExtractionOptions }[], options: PipelineOptions): Promise<{ backend: string; out: (TensorJson | ErrorJson)[] } | ErrorJson> {
    let extractor: FeatureExtractionPipeline;
    try {
      extractor = await pipeline('feature-extraction', `/models/${fixture}/`, { ...options, client: { calibration: 'skip' } });
    } catch (e) {
      return error(e);
    }
    try {
      const out: (TensorJson | ErrorJson)[] = [];
      for (const c of calls) out.push(await extractor(c.texts, c.opts).then(json, error));
      return { backend: extractor.client.plan.backend, out };
    } finally {
      await extractor.dispose();
    }
  },
};

declare global {
  interface Window {
    __pipeline?: typeof api;
  }
}
window.__pipeline = api;
document.getElementById('status')!.textContent = 'ready';
