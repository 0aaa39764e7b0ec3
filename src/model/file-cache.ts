/**
 * The model-file cache: one Cache Storage bucket (`m3web-models-v1`) that the loader reads and writes
 * (src/model/source.ts fetches through `cachedFetch`), the service worker serves from (src/app/sw.ts),
 * and the playground's storage panel lists and deletes. One copy of every file, whoever asks for it.
 *
 * A file is committed only after it validated while streaming past (design.md, "Offline caching"):
 *  - status 200 (Cache.put rejects 206; a partial file must never be served later), not opaque;
 *  - not an HTML page (a dev server's SPA fallback answers 200 + index.html: transformers.js #142);
 *  - exactly Content-Length bytes when the server sent one;
 *  - the format's own bytes: a safetensors header (8-byte little-endian length, a JSON header whose
 *    largest data offset + header == file size), a zip's 'PK' signature for torch .pt files, a protobuf
 *    tag for .onnx, and JSON that parses for .json files.
 * The check runs in a TransformStream on one branch of a tee, and `cache.put` commits an entry only when
 * its body stream ends without error, so a failed check (or an aborted download) leaves nothing behind.
 * A 404 is remembered as an empty 404 entry, so optional files that do not exist stay absent offline.
 * Without Cache Storage (Node, an insecure origin) everything is a plain fetch.
 */
import { M3Error, QuotaError } from '../errors.ts';

export const MODEL_CACHE_NAME = 'm3web-models-v1';
/** Cache events (stored, rejected, quota) are broadcast here so a page sees what a worker cached. */
export const MODEL_CACHE_CHANNEL = 'm3web-model-cache';

/** A downloaded model file failed validation, so it was not cached. */
export class ModelCacheError extends M3Error {}

export type CacheEvent = { type: 'stored'; url: string; bytes: number } | { type: 'rejected'; url: string; error: string } | { type: 'quota'; url: string; error: string };

export type FileFormat = 'safetensors' | 'zip' | 'onnx' | 'json' | 'other';

/** A model's weights quantised in this browser are cached under `<model folder>/.m3web-cache/<int8|q4>/` (src/model/quant-cache.ts). */
export const QUANT_CACHE_DIR = '.m3web-cache';

/** A quantised copy's manifest (its commit marker: quant-cache.ts QUANT_CACHE_MANIFEST), capturing the dtype. */
const QUANT_MANIFEST_PATH = /\/\.m3web-cache\/([^/]+)\/m3web-cache\.json$/;

/** The stored bucket as the cache's users need it (Cache Storage's Cache; tests pass an in-memory one). */
export type CacheLike = Pick<Cache, 'match' | 'put' | 'delete' | 'keys'>;

/** Local folders (File System Access / drag-and-drop) are stored under this path of the page's origin. */
export const LOCAL_MODELS_PATH = '/local-models/';

export function formatOf(url: string): FileFormat {
  const path = new URL(url, 'http://x').pathname.toLowerCase();
  if (path.endsWith('.safetensors')) return 'safetensors';
  if (path.endsWith('.pt') || path.endsWith('.bin') || path.endsWith('.pth')) return 'zip';
  if (path.endsWith('.onnx')) return 'onnx';
  if (path.endsWith('.json')) return 'json';
  return 'other';
}

/** Model-file URLs the service worker routes to this cache: model folders on this origin and hub `resolve` URLs. */
export function isModelFileUrl(url: URL, origin: string): boolean {
  if (url.origin === origin) return url.pathname.startsWith('/models/') || url.pathname.startsWith(LOCAL_MODELS_PATH);
  return /^\/[^/]+\/[^/]+\/resolve\/[^/]+\/./.test(url.pathname);
}

/** The folder a cached file belongs to: hub `org/name/resolve/rev/`, `/models/<name>/`, `/local-models/<name>/`, else its directory. */
export function modelBaseOf(url: string): string {
  const u = new URL(url);
  const hub = /^\/[^/]+\/[^/]+\/resolve\/[^/]+\//.exec(u.pathname);
  const local = /^\/(models|local-models)\/[^/]+\//.exec(u.pathname);
  const m = hub ?? local;
  if (m) return u.origin + m[0];
  // A quantised copy (QUANT_CACHE_DIR) belongs to the folder it was made from.
  const q = u.pathname.indexOf(`/${QUANT_CACHE_DIR}/`);
  return u.origin + (q >= 0 ? u.pathname.slice(0, q + 1) : u.pathname.slice(0, u.pathname.lastIndexOf('/') + 1));
}

const HTML = /^\s*<(!doctype|html)/i;
const MAX_SAFETENSORS_HEADER = 100_000_000; // the format's own limit (huggingface/safetensors README)
const MAX_JSON_BYTES = 64 * 1024 * 1024;

/**
 * A pass-through stream that errors at the end (or as soon as it can tell) when the bytes are not a
 * whole, valid file of `format`. `expected` is Content-Length, or null when the server did not send one.
 */
export function validatingStream(url: string, format: FileFormat, expected: number | null): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  let head = new Uint8Array(0); // the first bytes, kept until the format check is done
  let headDone = false;
  let sizeFromHeader: number | null = null;
  const json: Uint8Array[] = [];
  const fail = (message: string, exp: string, received: unknown) => new ModelCacheError(`not caching ${url}: ${message}`, { expected: exp, received });
  // Bytes the format check needs: the safetensors header (its length is in the first 8 bytes), else 64.
  const need = (): number => {
    if (format !== 'safetensors' || head.length < 8) return format === 'safetensors' ? 8 : 64;
    const len = Number(new DataView(head.buffer).getBigUint64(0, true));
    return len > MAX_SAFETENSORS_HEADER ? 8 : 8 + len; // an impossible length fails as soon as it is seen
  };
  const checkHead = (final: boolean): void => {
    if (!final && head.length < need()) return;
    const text = new TextDecoder().decode(head.subarray(0, 64));
    if (HTML.test(text)) throw fail('the server sent an HTML page', 'a model file', 'HTML');
    if (format === 'safetensors') {
      if (head.length < 8) throw fail('file ends before the safetensors header length', '≥ 8 bytes', head.length);
      const len = Number(new DataView(head.buffer).getBigUint64(0, true));
      if (len < 2 || len > MAX_SAFETENSORS_HEADER) throw fail('bad safetensors header length', `2..${MAX_SAFETENSORS_HEADER}`, len);
      if (head.length < 8 + len) throw fail('file ends inside the safetensors header', `${8 + len} bytes`, head.length);
      let header: Record<string, { data_offsets?: [number, number] }>;
      try {
        header = JSON.parse(new TextDecoder().decode(head.subarray(8, 8 + len)));
      } catch (cause) {
        throw fail('safetensors header is not JSON', 'a JSON header', (cause as Error).message);
      }
      let end = 0;
      for (const [k, v] of Object.entries(header)) if (k !== '__metadata__' && Array.isArray(v?.data_offsets)) end = Math.max(end, v.data_offsets[1]);
      sizeFromHeader = 8 + len + end;
    } else if (format === 'zip') {
      if (!(head[0] === 0x50 && head[1] === 0x4b)) throw fail('not a zip archive (torch.save format)', "'PK' signature", `0x${(head[0] ?? 0).toString(16)} 0x${(head[1] ?? 0).toString(16)}`);
    } else if (format === 'onnx') {
      // ModelProto field 1 (ir_version, varint) is written first by every exporter: tag byte 0x08.
      if (head[0] !== 0x08) throw fail('not an ONNX protobuf', 'tag byte 0x08', head[0]);
    }
    headDone = true;
    head = head.slice(0, 64);
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.length;
      if (expected !== null && seen > expected) throw fail('more bytes than Content-Length', `${expected} bytes`, seen);
      if (!headDone) {
        const h = new Uint8Array(head.length + chunk.length);
        h.set(head);
        h.set(chunk, head.length);
        head = h;
        checkHead(false);
      }
      if (format === 'json') {
        if (seen > MAX_JSON_BYTES) throw fail('JSON file too large to validate', `≤ ${MAX_JSON_BYTES} bytes`, seen);
        json.push(chunk);
      }
      controller.enqueue(chunk);
    },
    flush() {
      if (!headDone) checkHead(true);
      if (expected !== null && seen !== expected) throw fail('download ended early', `${expected} bytes (Content-Length)`, seen);
      if (sizeFromHeader !== null && seen !== sizeFromHeader) throw fail('safetensors size does not match its header', `${sizeFromHeader} bytes`, seen);
      if (format === 'json') {
        const all = new Uint8Array(seen);
        let o = 0;
        for (const c of json) {
          all.set(c, o);
          o += c.length;
        }
        try {
          JSON.parse(new TextDecoder().decode(all));
        } catch (cause) {
          throw fail('JSON does not parse', 'valid JSON', (cause as Error).message);
        }
      }
    },
  });
}

function contentLength(h: Headers): number | null {
  const v = h.get('content-length');
  const enc = h.get('content-encoding');
  return v !== null && /^\d+$/.test(v.trim()) && (!enc || enc === 'identity') ? Number(v) : null;
}

/** The headers a remembered 404 keeps: the marker, and the hub's X-Error-Code (the loader tells a missing file from a missing repo by it). */
function absentHeaders(from: Headers): Headers {
  const h = new Headers({ 'x-m3web-absent': '1' });
  const code = from.get('x-error-code');
  if (code) h.set('x-error-code', code);
  return h;
}

/** Tells every page of this origin what the cache did (the storage panel listens). */
export function broadcast(ev: CacheEvent): void {
  if (typeof BroadcastChannel === 'undefined') return;
  const ch = new BroadcastChannel(MODEL_CACHE_CHANNEL);
  ch.postMessage(ev);
  ch.close();
}

function isQuota(e: unknown): boolean {
  return (e as { name?: string })?.name === 'QuotaExceededError';
}

/** Stores `body` (validated on the way in) under `url`; resolves when committed, rejects with a typed error. */
export async function storeValidated(cache: Pick<Cache, 'put' | 'match'>, url: string, body: ReadableStream<Uint8Array>, headers: Headers): Promise<number> {
  const expected = contentLength(headers);
  const type = headers.get('content-type') ?? 'application/octet-stream';
  if (/^\s*text\/html\b/i.test(type)) {
    await body.cancel().catch(() => undefined);
    throw new ModelCacheError(`not caching ${url}: the server sent an HTML page`, { expected: 'a model file', received: type });
  }
  const stored = new Headers({ 'content-type': type, 'x-m3web-cached-at': new Date().toISOString() });
  if (expected !== null) stored.set('content-length', String(expected));
  let seen = 0;
  const count = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      seen += chunk.length;
      controller.enqueue(chunk);
    },
  });
  try {
    await cache.put(url, new Response(body.pipeThrough(validatingStream(url, formatOf(url), expected)).pipeThrough(count), { status: 200, headers: stored }));
    if (expected === null) {
      // No usable Content-Length (a compressing server: vite preview gzips, so do many hosts): write the entry once more
      // with the size its body turned out to have, so the storage panel and a later load from the cache know it.
      const hit = await cache.match(url);
      stored.set('content-length', String(seen));
      if (hit?.body) await cache.put(url, new Response(hit.body, { status: 200, headers: stored }));
    }
  } catch (e) {
    if (isQuota(e)) throw new QuotaError(`no room to cache ${url}`, { expected: 'free storage quota for this origin', received: (e as Error).message, cause: e });
    if (e instanceof M3Error) throw e;
    throw new ModelCacheError(`not caching ${url}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
  return expected ?? seen;
}

/** The model-file cache, or null without Cache Storage (Node, an insecure origin, storage blocked). */
export async function openModelCache(): Promise<Cache | null> {
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(MODEL_CACHE_NAME);
  } catch {
    return null; // e.g. storage blocked in this context: behave as without a cache
  }
}

/** Stores cachedFetch started in this context and that have not settled yet, by URL (true: committed). */
const storing = new Map<string, Promise<boolean>>();

/**
 * Resolves once every store of `urls` that cachedFetch started in this context has settled (committed or
 * refused). A caller about to delete those entries waits for it: a store still streaming in would commit
 * its entry again after the delete (src/model/quant-cache.ts deletes a model's source weights).
 */
export async function whenStored(urls: readonly string[]): Promise<void> {
  await Promise.all(urls.map((u) => storing.get(u)));
}

/**
 * `fetch` for model files: a validated cached copy when there is one, else the network, with the body
 * teed into the cache (committed only if it validates). Same signature as fetch, so the loader passes it on.
 */
export async function cachedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const cache = method === 'GET' && /^https?:/.test(url) ? await openModelCache() : null;
  if (!cache) return globalThis.fetch(input, init);
  const hit = await cache.match(url);
  if (hit) return hit;
  const res = await globalThis.fetch(input, init);
  if (res.status === 404 && res.type !== 'opaque') {
    // Remember that an optional file (m3web.json, config_sentence_transformers.json, …) is absent, so an offline
    // load sees the same 404 instead of a network error. Only 404: an auth error or a 5xx is never remembered.
    await cache.put(url, new Response(null, { status: 404, statusText: 'Not Found', headers: absentHeaders(res.headers) })).catch(() => undefined);
    return res;
  }
  if (res.status !== 200 || res.type === 'opaque' || !res.body) return res;
  const [mine, theirs] = res.body.tee();
  const stored = storeValidated(cache, url, theirs, res.headers).then(
    (bytes) => (broadcast({ type: 'stored', url, bytes }), true),
    (e: Error) => (broadcast({ type: e instanceof QuotaError ? 'quota' : 'rejected', url, error: `${e.name}: ${e.message}` }), false),
  );
  storing.set(url, stored);
  void stored.then(() => storing.get(url) === stored && storing.delete(url));
  return new Response(mine, { status: res.status, statusText: res.statusText, headers: res.headers });
}

/**
 * For the service worker: a cached copy, else the network. Files are stored by the loader's cachedFetch
 * only; here only a 404 is remembered (the client's main-thread probe for m3web.json), so the same probe
 * offline gets the same answer instead of a network error.
 */
export async function serveModelFile(request: Request): Promise<Response> {
  const cache = await openModelCache();
  const hit = cache ? await cache.match(request.url) : undefined;
  if (hit) return hit;
  const res = await fetch(request);
  if (cache && res.status === 404 && res.type !== 'opaque') await cache.put(request.url, new Response(null, { status: 404, statusText: 'Not Found', headers: absentHeaders(res.headers) })).catch(() => undefined);
  return res;
}

export interface CachedModel {
  base: string;
  files: { url: string; bytes: number }[];
  bytes: number;
  /** Weights quantised in this browser and stored in place of the source's (committed copies: src/model/quant-cache.ts). */
  quantized: string[];
}

/** Every cached model folder with its files and sizes (from the stored Content-Length). */
export async function listCachedModels(): Promise<CachedModel[]> {
  const cache = await openModelCache();
  if (!cache) return [];
  const byBase = new Map<string, CachedModel>();
  for (const req of await cache.keys()) {
    const res = await cache.match(req);
    if (res?.headers.has('x-m3web-absent')) continue; // a remembered 404, not a file
    const bytes = Number(res?.headers.get('content-length') ?? 0);
    const base = modelBaseOf(req.url);
    const m = byBase.get(base) ?? { base, files: [], bytes: 0, quantized: [] };
    m.files.push({ url: req.url, bytes });
    // A copy counts once its manifest, written last, is in (quant-cache.ts QUANT_CACHE_MANIFEST).
    const q = QUANT_MANIFEST_PATH.exec(new URL(req.url).pathname);
    if (q) m.quantized.push(decodeURIComponent(q[1]));
    m.bytes += bytes;
    byBase.set(base, m);
  }
  return [...byBase.values()].sort((a, b) => a.base.localeCompare(b.base));
}

/** Deletes every cached file of one model folder; resolves to the number of files removed. */
export async function deleteCachedModel(base: string): Promise<number> {
  const cache = await openModelCache();
  if (!cache) return 0;
  let n = 0;
  for (const req of await cache.keys()) if (modelBaseOf(req.url) === base && (await cache.delete(req))) n++;
  return n;
}

/**
 * Puts a local folder's files (File System Access API or drag-and-drop) into the cache under
 * `<origin>/local-models/<name>/`, validated like downloads, so the loader reads them by URL.
 */
export async function storeLocalModel(origin: string, name: string, files: { path: string; file: Blob }[], onProgress?: (done: number, total: number) => void): Promise<string> {
  const cache = await openModelCache();
  if (!cache) throw new ModelCacheError('this page has no Cache Storage (an insecure origin?)', { expected: 'a secure context', received: origin });
  if (!files.some((f) => f.path === 'config.json'))
    throw new ModelCacheError('the folder has no config.json at its top level', {
      expected: 'a Hugging Face model folder',
      received: files
        .map((f) => f.path)
        .slice(0, 5)
        .join(', '),
    });
  const base = `${origin}${LOCAL_MODELS_PATH}${encodeURIComponent(name)}/`;
  await deleteCachedModel(base);
  let done = 0;
  for (const { path, file } of files) {
    const url = base + path.split('/').map(encodeURIComponent).join('/');
    const type = formatOf(url) === 'json' ? 'application/json' : 'application/octet-stream';
    await storeValidated(cache, url, file.stream(), new Headers({ 'content-type': type, 'content-length': String(file.size) }));
    onProgress?.(++done, files.length);
  }
  return base;
}
