/**
 * The client's request queue: every embed call is split into slices of its texts; slices of calls with
 * the same options are batched fairly (round-robin over calls, FIFO within one) into worker calls; each
 * slice's rows are written into its call's output at most once, and a call settles exactly once.
 * Pure logic (no worker, no timers), so Node tests drive it directly.
 *
 * Token caps are the worker's business: its engine tokenises with the model's own tokenizer and cuts
 * GPU batches by padded tokens. The client caps texts per worker call only, and learns token counts
 * and truncation from each result (`tokens`, `truncatedRows`), never from a characters-per-token guess.
 */
import type { EmbedResult } from '../engine/service.ts';
import type { ClientEmbedOptions } from './types.ts';
import type { ColbertBlock, EngineEmbedding } from '../engine/engine.ts';

/** What one request asks the worker for (the call's options, layers and dims resolved); requests with equal keys may share a worker call. */
export type RequestOptions = Omit<ClientEmbedOptions, 'layers' | 'dims' | 'signal' | 'onProgress'> & { layers: number; dims: number };

export interface RequestResult extends Omit<EmbedResult, 'ms' | 'backend'> {
  ms: number;
  /** 'webgpu', 'cpu', 'cpu-ref' or 'ort-wasm'. */
  backend: string;
  /** Worker calls that carried part of this request (including re-runs after a crash). */
  batches: number;
  /** Worker restarts this request lived through. */
  restarts: number;
}

export interface Req {
  id: number;
  texts: string[];
  key: string;
  opts: RequestOptions;
  /** (n, dims) dense rows; length 0 when 'dense' was not asked. */
  out: Float32Array;
  sparse?: NonNullable<EngineEmbedding['sparse']>;
  colbert?: ColbertBlock[];
  tokens: Uint32Array;
  truncated: Set<number>;
  chunks: Chunk[];
  done: number;
  settled: boolean;
  resolve: (r: RequestResult) => void;
  reject: (e: unknown) => void;
  onProgress?: (p: { done: number; total: number }) => void;
  t0: number;
  batches: number;
  restarts: number;
  backend: string;
  dtype: string;
  cleanup: () => void;
}

export interface Chunk {
  req: Req;
  start: number;
  end: number;
  state: 'queued' | 'running' | 'done';
  /** Run alone (after a combined batch failed with an input error). */
  solo: boolean;
}

export class RequestQueue {
  readonly requests = new Map<number, Req>();
  private queue: Chunk[] = [];
  private rr = 0;
  private nextId = 1;

  constructor(private readonly sliceTexts: number) {}

  /** Registers a request and queues its slices; the returned Req settles through resolve/reject. */
  add(texts: string[], opts: RequestOptions, handlers: Pick<Req, 'resolve' | 'reject' | 'onProgress'>): Req {
    const n = texts.length;
    const dense = (opts.outputs ?? ['dense']).includes('dense');
    const req: Req = {
      id: this.nextId++,
      texts: [...texts],
      key: JSON.stringify(opts),
      opts,
      out: new Float32Array(dense ? n * opts.dims : 0),
      sparse: opts.outputs?.includes('sparse') ? new Array(n) : undefined,
      colbert: opts.outputs?.includes('colbert') ? new Array(n) : undefined,
      tokens: new Uint32Array(n),
      truncated: new Set(),
      chunks: [],
      done: 0,
      settled: false,
      ...handlers,
      t0: performance.now(),
      batches: 0,
      restarts: 0,
      backend: '',
      dtype: '',
      cleanup: () => undefined,
    };
    const per = Math.max(1, this.sliceTexts);
    for (let s = 0; s < n; s += per) req.chunks.push({ req, start: s, end: Math.min(n, s + per), state: 'queued', solo: false });
    this.requests.set(req.id, req);
    this.queue.push(...req.chunks);
    return req;
  }

  get size(): number {
    return this.requests.size;
  }

  /** Settles a request with an error, once; its queued slices are dropped. */
  fail(req: Req, e: unknown): void {
    if (req.settled) return;
    req.settled = true;
    req.cleanup();
    this.requests.delete(req.id);
    this.queue = this.queue.filter((c) => c.req !== req);
    req.reject(e);
  }

  failAll(e: (r: Req) => unknown): void {
    for (const r of [...this.requests.values()]) this.fail(r, e(r));
  }

  private succeed(req: Req): void {
    if (req.settled) return;
    req.settled = true;
    req.cleanup();
    this.requests.delete(req.id);
    req.resolve({
      embeddings: req.out,
      sparse: req.sparse,
      colbert: req.colbert,
      n: req.texts.length,
      dims: req.opts.dims,
      layers: req.opts.layers,
      truncated: req.truncated.size,
      truncatedRows: [...req.truncated].sort((a, b) => a - b),
      tokens: req.tokens,
      backend: req.backend,
      dtype: req.dtype,
      ms: performance.now() - req.t0,
      batches: req.batches,
      restarts: req.restarts,
    });
  }

  /** Puts slices that were running on a dead worker back at the front; returns the requests touched. */
  requeue(chunks: Chunk[]): Set<Req> {
    const touched = new Set(chunks.map((c) => c.req));
    for (const c of chunks) if (c.state === 'running') c.state = 'queued';
    this.queue.unshift(...chunks.filter((c) => c.state === 'queued' && !c.req.settled));
    return touched;
  }

  /** After an input error in a shared batch: re-run each slice alone so only the guilty request fails. */
  isolate(chunks: Chunk[]): void {
    for (const c of chunks) {
      c.state = 'queued';
      c.solo = true;
    }
    this.queue.unshift(...chunks);
  }

  /**
   * One slice from each waiting request in turn, all with the same options, up to maxTexts texts.
   * Requests deeper than `maxLayers` (the blocks the worker holds now) wait for a reload.
   */
  next(maxTexts: number, maxLayers = Infinity): Chunk[] {
    this.queue = this.queue.filter((c) => c.state === 'queued' && !c.req.settled);
    const ready = this.queue.filter((c) => c.req.opts.layers <= maxLayers);
    if (!ready.length) return [];
    const byReq = new Map<Req, Chunk[]>();
    for (const c of ready) (byReq.get(c.req) ?? byReq.set(c.req, []).get(c.req)!).push(c);
    const reqs = [...byReq.keys()];
    const start = this.rr % reqs.length;
    const order = [...reqs.slice(start), ...reqs.slice(0, start)];
    const first = byReq.get(order[0])![0];
    this.rr = start + 1;
    const batch = [first];
    if (first.solo) {
      first.state = 'running';
      return batch;
    }
    let texts = first.end - first.start;
    for (let added = true; added;) {
      added = false;
      for (const r of order) {
        const c = byReq.get(r)!.filter((x) => !batch.includes(x) && !x.solo)[0];
        if (!c || c.req.key !== first.req.key) continue;
        const n = c.end - c.start;
        if (texts + n > maxTexts) continue;
        batch.push(c);
        texts += n;
        added = true;
      }
    }
    for (const c of batch) c.state = 'running';
    return batch;
  }

  /** Writes one worker result into the requests whose slices it carried; settles the ones now complete. */
  deliver(batch: Chunk[], r: EmbedResult): void {
    const truncated = new Set(r.truncatedRows ?? []);
    let row = 0;
    for (const c of batch) {
      const n = c.end - c.start;
      const req = c.req;
      req.batches++;
      if (!req.settled && c.state === 'running') {
        // Rows of one call come from one engine: when the weights were reloaded in another dtype (or a restart
        // landed on another backend) after some slices were done, those run again on the new one.
        if (req.done > 0 && (r.dtype !== req.dtype || r.backend !== req.backend)) this.rerun(req);
        if (req.out.length) req.out.set(r.embeddings.subarray(row * r.dims, (row + n) * r.dims), c.start * r.dims);
        for (let i = 0; i < n; i++) {
          if (req.sparse && r.sparse) req.sparse[c.start + i] = r.sparse[row + i];
          if (req.colbert && r.colbert) req.colbert[c.start + i] = r.colbert[row + i];
          if (r.tokens) req.tokens[c.start + i] = r.tokens[row + i];
          if (truncated.has(row + i)) req.truncated.add(c.start + i);
        }
        c.state = 'done';
        req.done++;
        req.backend = r.backend;
        req.dtype = r.dtype;
        req.onProgress?.({ done: req.done, total: req.chunks.length });
        if (req.done === req.chunks.length) this.succeed(req);
      }
      row += n;
    }
  }

  /** Queues a request's done slices again (at the front) and forgets their truncation. */
  private rerun(req: Req): void {
    const done = req.chunks.filter((c) => c.state === 'done');
    for (const c of done) c.state = 'queued';
    this.queue.unshift(...done);
    req.done = 0;
    req.truncated.clear();
  }

  clear(): void {
    this.queue = [];
  }
}
