/**
 * Where model files come from: a plain base URL (a dev server, a CDN folder) or a Hugging Face hub
 * repository. The same code runs on the main thread, in a worker and in Node: it only needs
 * `fetch`, `URL`, `ReadableStream` and `DOMException`.
 *
 * Fetching is strict about what comes back, because the failure modes are silent otherwise:
 *  - a dev server (Vite's SPA fallback, `serve -s`, …) answers a missing file with index.html and
 *    status 200 (transformers.js #142, #366) — we reject HTML wherever a model file was expected;
 *  - only 404 means "this optional file does not exist"; 401/403 mean the whole repository is
 *    private/gated/missing (the hub answers 401 for a repo that does not exist), so they always throw;
 *  - an abort is rethrown as the signal's reason, never wrapped, so callers can tell cancel from failure.
 */
import { InvalidInputError, ModelAccessError, ModelFetchError } from '../errors.ts';
import { cachedFetch } from './file-cache.ts';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_HUB_REVISION = 'main';

/** What `resolveModelSource` accepts. */
export type ModelSourceSpec = string | { baseUrl: string; subfolder?: string } | { hubId: string; revision?: string; endpoint?: string; subfolder?: string } | ModelSource;

interface ModelSourceBase {
  /** Stable identity, fit for cache keys: `org/name@revision` (hub) or the absolute base URL (url). */
  readonly id: string;
  /** Human-readable origin for logs and error messages. */
  describe(): string;
  /** Absolute URL of one file of the model, e.g. `url('config.json')`. */
  url(file: string): string;
}

export interface HubModelSource extends ModelSourceBase {
  readonly kind: 'hub';
  readonly hubId: string;
  readonly revision: string;
  /** Without trailing slash. */
  readonly endpoint: string;
  /** Folder inside the repository the model lives in ('' for the root), as transformers' `subfolder`. */
  readonly subfolder: string;
}

export interface UrlModelSource extends ModelSourceBase {
  readonly kind: 'url';
  /** Absolute, always ending with '/'. */
  readonly baseUrl: string;
}

/**
 * A resolved source. It has methods, so it does not survive structured cloning: pass the
 * `ModelSourceSpec` across a worker boundary and resolve it on the other side.
 */
export type ModelSource = HubModelSource | UrlModelSource;

const ACCEPTED_FORMS = "a base URL ('https://host/models/x/', '/models/x', './models/x'), a Hugging Face id ('org/name'), " + '{ baseUrl, subfolder? }, or { hubId, revision?, endpoint?, subfolder? }';

// Hub repo ids: exactly one slash, each part starting with a letter/digit/underscore, then
// letters, digits, '_', '.', '-'. No scheme and no leading '/' or '.', so relative URLs are never
// mistaken for ids (write '/models/x' or './models/x' for a folder on the same server).
const HUB_ID = /^[A-Za-z0-9_][\w.-]*\/[A-Za-z0-9_][\w.-]*$/;
const HAS_SCHEME = /^[a-z][a-z0-9+.-]*:/i;

export function isHubId(value: string): boolean {
  return HUB_ID.test(value) && !value.includes('..');
}

export function resolveModelSource(spec: ModelSourceSpec): ModelSource {
  if (typeof spec === 'string') {
    if (isHubId(spec)) return hubSource(spec, DEFAULT_HUB_REVISION, DEFAULT_HUB_ENDPOINT);
    if (HAS_SCHEME.test(spec) || spec.startsWith('/') || spec.startsWith('.')) return urlSource(spec);
    throw new InvalidInputError(`model source: not a URL nor a Hugging Face id; accepted forms are ${ACCEPTED_FORMS}`, { received: spec });
  }
  if (spec !== null && typeof spec === 'object') {
    const o = spec as Record<string, unknown>;
    if ((o.kind === 'hub' || o.kind === 'url') && typeof o.url === 'function') return spec as ModelSource;
    const subfolder = checkSubfolder(o.subfolder);
    if (typeof o.baseUrl === 'string' && !('hubId' in o)) return urlSource(subfolder ? `${o.baseUrl.replace(/\/+$/, '')}/${subfolder}/` : o.baseUrl);
    if (typeof o.hubId === 'string' && !('baseUrl' in o)) {
      if (!isHubId(o.hubId)) throw new InvalidInputError('model source: hubId must look like "org/name"', { received: o.hubId });
      if (o.revision !== undefined && (typeof o.revision !== 'string' || o.revision === '')) throw new InvalidInputError('model source: revision must be a non-empty string', { received: o.revision });
      if (o.endpoint !== undefined && typeof o.endpoint !== 'string') throw new InvalidInputError('model source: endpoint must be a string', { received: o.endpoint });
      const endpoint = parseAbsolute((o.endpoint as string | undefined) ?? DEFAULT_HUB_ENDPOINT, 'endpoint').href.replace(/\/+$/, '');
      return hubSource(o.hubId, (o.revision as string | undefined) ?? DEFAULT_HUB_REVISION, endpoint, subfolder);
    }
  }
  throw new InvalidInputError(`model source: accepted forms are ${ACCEPTED_FORMS}`, { received: spec });
}

/** A repository-relative folder ('', 'models/small'): checked like a file path, without slashes at the ends. */
function checkSubfolder(v: unknown): string {
  if (v === undefined || v === '') return '';
  if (typeof v !== 'string') throw new InvalidInputError('model source: subfolder must be a string', { received: v });
  const s = v.replace(/^\/+|\/+$/g, '');
  encodeFile(s); // throws on '..', empty segments, schemes
  return s;
}

function hubSource(hubId: string, revision: string, endpoint: string, subfolder = ''): HubModelSource {
  // The hub expects the revision as ONE path segment: 'refs/pr/1' must travel as 'refs%2Fpr%2F1'
  // (what huggingface_hub and transformers.js send).
  const prefix = `${endpoint}/${hubId}/resolve/${encodeURIComponent(revision)}/${subfolder ? `${encodeFile(subfolder)}/` : ''}`;
  return {
    kind: 'hub',
    hubId,
    revision,
    endpoint,
    subfolder,
    id: `${hubId}@${revision}${subfolder ? `/${subfolder}` : ''}`,
    describe: () => `Hugging Face model ${hubId}${subfolder ? ` (folder ${subfolder})` : ''} (revision ${revision}, ${endpoint})`,
    url: (file) => prefix + encodeFile(file),
  };
}

function urlSource(raw: string): UrlModelSource {
  const u = parseAbsolute(raw, 'base URL');
  u.search = '';
  u.hash = '';
  // Without the trailing slash, new URL('config.json', base) would replace the last segment.
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  const baseUrl = u.href;
  return {
    kind: 'url',
    baseUrl,
    id: baseUrl,
    describe: () => `model folder ${baseUrl}`,
    url: (file) => baseUrl + encodeFile(file),
  };
}

/** Absolute http(s) URL; relative ones resolve against the page/worker location when there is one. */
function parseAbsolute(raw: string, what: string): URL {
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  let u: URL;
  try {
    u = HAS_SCHEME.test(raw) ? new URL(raw) : new URL(raw, base);
  } catch (cause) {
    const why = HAS_SCHEME.test(raw) || base ? 'not a valid URL' : 'a relative URL needs a page location to resolve against (none here, e.g. in Node)';
    throw new InvalidInputError(`model source: ${what} is ${why}`, { expected: 'an absolute http(s) URL', received: raw, cause });
  }
  // Only http(s): fetch in Node has no file:, and 'localhost:5173/x' would otherwise parse with scheme 'localhost:'.
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new InvalidInputError(`model source: ${what} must use http or https`, { received: raw });
  return u;
}

/** Files are repository-relative paths ('config.json', 'onnx/model.onnx'); each segment is percent-encoded. */
function encodeFile(file: string): string {
  if (typeof file !== 'string' || file === '' || file.startsWith('/') || HAS_SCHEME.test(file) || file.split('/').some((s) => s === '' || s === '.' || s === '..'))
    throw new InvalidInputError('model file name must be a relative path inside the model folder', { received: file });
  return file.split('/').map(encodeURIComponent).join('/');
}

// ---------------------------------------------------------------------------------------------
// Fetching

export type ModelFileKind = 'json' | 'binary' | 'text';
// Uint8Array<ArrayBuffer> (never shared/resizable): what GPUQueue.writeBuffer accepts under TS 5.9's DOM types.
interface KindResult {
  json: unknown;
  binary: Uint8Array<ArrayBuffer>;
  text: string;
}

export interface ModelStreamOptions {
  /** A 404 resolves null instead of throwing. */
  optional?: boolean;
  signal?: AbortSignal;
  /** Called with 0 once headers arrive, then after every chunk; `total` is null when unknown. */
  onProgress?: (loaded: number, total: number | null) => void;
  /** Defaults to the global fetch (injected for auth headers, tests, or a caching layer). */
  fetchImpl?: typeof fetch;
  /** Extra request headers (loadModel's `token` travels here as Authorization; never logged or put in errors). */
  headers?: Record<string, string>;
}

export interface ModelFetchOptions<K extends ModelFileKind = ModelFileKind> extends ModelStreamOptions {
  kind: K;
}

export interface ModelStream {
  /** The body, checked not to be an HTML page; errors are ModelFetchError or the abort reason. */
  stream: ReadableStream<Uint8Array>;
  /** Expected byte length (Content-Length), or null when unknown or content-encoded. */
  total: number | null;
}

/** Fetches one model file whole: parsed JSON, text, or bytes. */
export function fetchModelFile<K extends ModelFileKind>(source: ModelSource, file: string, opts: ModelFetchOptions<K> & { optional: true }): Promise<KindResult[K] | null>;
export function fetchModelFile<K extends ModelFileKind>(source: ModelSource, file: string, opts: ModelFetchOptions<K> & { optional?: false }): Promise<KindResult[K]>;
export function fetchModelFile<K extends ModelFileKind>(source: ModelSource, file: string, opts: ModelFetchOptions<K>): Promise<KindResult[K] | null>;
export async function fetchModelFile(source: ModelSource, file: string, opts: ModelFetchOptions): Promise<unknown> {
  const what = opts.kind === 'json' ? 'JSON' : opts.kind === 'text' ? 'a text file' : 'a binary model file';
  const opened = await open(source, file, opts, what);
  if (opened === null) return null;
  const bytes = await collect(opened.stream);
  if (opts.kind === 'binary') return bytes;
  // TextDecoder strips a UTF-8 BOM, which JSON.parse would otherwise choke on.
  const text = new TextDecoder().decode(bytes);
  if (opts.kind === 'text') return text;
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new ModelFetchError(`model file "${file}" is not valid JSON: ${(cause as Error).message}`, opened.url, { cause });
  }
}

/**
 * Opens one model file as a byte stream, for callers that parse while downloading (safetensors).
 * Resolves once the response headers arrived and passed the checks; null for a missing optional file.
 */
export async function openModelStream(source: ModelSource, file: string, opts: ModelStreamOptions = {}): Promise<ModelStream | null> {
  const opened = await open(source, file, opts, 'a binary model file');
  return opened && { stream: opened.stream, total: opened.total };
}

async function open(source: ModelSource, file: string, opts: ModelStreamOptions, what: string): Promise<(ModelStream & { url: string }) | null> {
  const url = source.url(file);
  const { signal } = opts;
  signal?.throwIfAborted();
  // Wrapped, not passed bare: a browser's fetch called as a method of another object throws "Illegal invocation".
  // Default: through the model-file cache (src/model/file-cache.ts; a plain fetch where there is no Cache Storage).
  const fetchImpl = opts.fetchImpl ?? cachedFetch;

  let res: Response;
  try {
    const init: RequestInit = {};
    if (signal) init.signal = signal;
    if (opts.headers) init.headers = opts.headers;
    res = await fetchImpl(url, init);
  } catch (cause) {
    throw abortReason(signal) ?? new ModelFetchError(`network error fetching model file "${file}" from ${source.describe()}`, url, { cause });
  }

  if (!res.ok) {
    // The hub says why in X-Error-Code (EntryNotFound, RevisionNotFound, GatedRepo, …) when the header is exposed.
    const code = res.headers.get('x-error-code');
    await res.body?.cancel().catch(() => {}); // free the connection
    if (res.status === 404 && opts.optional && (code === null || code === 'EntryNotFound')) return null;
    const hint = res.status === 404 ? 'not found' : res.status === 401 || res.status === 403 ? 'access denied: the repository is missing, private or gated' : res.statusText || 'request failed';
    if (res.status === 401 || res.status === 403) {
      const sent = opts.headers && Object.keys(opts.headers).some((h) => h.toLowerCase() === 'authorization');
      throw new ModelAccessError(`HTTP ${res.status} fetching model file "${file}" (${hint}${code ? `, ${code}` : ''}): the repository needs a token with access`, url, {
        expected: 'a public repository, or the `token` option with a Hugging Face access token that may read it',
        received: sent ? 'a token the server refused' : 'no token',
        status: res.status,
      });
    }
    throw new ModelFetchError(`HTTP ${res.status} fetching model file "${file}" (${hint}${code ? `, ${code}` : ''})`, url, { status: res.status });
  }

  const contentType = res.headers.get('content-type') ?? '';
  if (/^\s*text\/html\b/i.test(contentType)) {
    await res.body?.cancel().catch(() => {});
    throw htmlError(file, url, what);
  }

  // Content-Length counts encoded bytes, while the body stream yields decoded ones: with a
  // Content-Encoding the total is unknown. (Cross-origin, Content-Encoding may be hidden; then the
  // total is a best guess and progress clamps to it.)
  const encoding = res.headers.get('content-encoding');
  const length = res.headers.get('content-length');
  const total = length !== null && /^\d+$/.test(length.trim()) && (!encoding || encoding === 'identity') ? Number(length) : null;

  opts.onProgress?.(0, total);
  const body = res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  return { url, total, stream: checkedStream(body, { file, url, what, total, signal, onProgress: opts.onProgress }) };
}

/** Largest leading-whitespace run we skip while sniffing for HTML; the sniff holds back at most this many bytes. */
const SNIFF_BYTES = 512;

/**
 * Wraps the body: counts progress, refuses an HTML page in the first bytes, turns transport errors
 * into ModelFetchError and aborts into the signal's reason. A pull source (rather than pipeThrough)
 * so that upstream errors can be translated, not just forwarded.
 */
function checkedStream(body: ReadableStream<Uint8Array>, ctx: { file: string; url: string; what: string; total: number | null; signal?: AbortSignal; onProgress?: (loaded: number, total: number | null) => void }): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let loaded = 0;
  let sniffed = false;
  let head: Uint8Array[] = []; // held back until the first bytes have been checked

  const flushHead = (controller: ReadableStreamDefaultController<Uint8Array>, final: boolean): void => {
    const bytes = concat(
      head,
      head.reduce((n, c) => n + c.length, 0),
    );
    const verdict = sniffHtml(bytes, final);
    if (verdict === 'undecided') return;
    if (verdict === 'html') throw htmlError(ctx.file, ctx.url, ctx.what);
    sniffed = true;
    head = [];
    if (bytes.length) controller.enqueue(bytes);
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) {
              if (!sniffed) flushHead(controller, true);
              if (ctx.total !== null && loaded < ctx.total) throw new ModelFetchError(`model file "${ctx.file}" was truncated: received ${loaded} of ${ctx.total} bytes`, ctx.url);
              controller.close();
              return;
            }
            if (!value.length) continue;
            loaded += value.length;
            ctx.onProgress?.(loaded, ctx.total !== null && loaded <= ctx.total ? ctx.total : null);
            if (sniffed) {
              controller.enqueue(value);
              return;
            }
            head.push(value);
            flushHead(controller, false);
            if (sniffed) return;
          }
        } catch (err) {
          const reason = abortReason(ctx.signal);
          const error = reason ?? (err instanceof ModelFetchError ? err : new ModelFetchError(`network error while downloading model file "${ctx.file}"`, ctx.url, { cause: err }));
          reader.cancel(error).catch(() => {});
          controller.error(error);
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  ); // pull only when the consumer asks: no hidden read-ahead beyond fetch's own
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array<ArrayBuffer>> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    n += value.length;
  }
  // One copy into an exactly sized buffer at the end (chunks are small; no repeated growing).
  return concat(chunks, n);
}

function concat(chunks: Uint8Array[], n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

const HTML_MARKERS = ['<!doctype', '<html'].map((s) => Array.from(s, (ch) => ch.charCodeAt(0)));

/**
 * Does the body open like an HTML page (after an optional UTF-8 BOM and ASCII whitespace)?
 * No model file can: JSON starts with '{' or '[', safetensors with an 8-byte header length whose
 * high bytes are zero, a torch zip with 'PK'.
 */
function sniffHtml(bytes: Uint8Array, final: boolean): 'html' | 'ok' | 'undecided' {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && i < SNIFF_BYTES && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  if (i >= SNIFF_BYTES) return 'ok';
  for (const marker of HTML_MARKERS) {
    let k = 0;
    while (k < marker.length && i + k < bytes.length && (bytes[i + k] | 0x20) === marker[k]) k++; // | 0x20: ASCII lower-case
    if (k === marker.length) return 'html';
    if (i + k === bytes.length && !final) return 'undecided'; // a prefix of the marker so far: need more bytes
  }
  return i === bytes.length && !final ? 'undecided' : 'ok';
}

function htmlError(file: string, url: string, what: string): ModelFetchError {
  return new ModelFetchError(`model file "${file}": expected ${what}, received an HTML page (a dev server answering a missing file with index.html?)`, url);
}

/** The error to surface when the signal fired: its reason, or a standard AbortError. */
function abortReason(signal: AbortSignal | undefined): unknown {
  if (!signal?.aborted) return undefined;
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}
