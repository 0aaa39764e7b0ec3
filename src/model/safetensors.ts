import { ModelFormatError } from '../errors.ts';
import { ByteQueue } from './bytes.ts';
import { DTYPE_BYTES, numel, type DType, type RawTensor } from './tensor.ts';

/**
 * safetensors reader. Format (huggingface/safetensors README): 8-byte little-endian u64 N,
 * then N bytes of UTF-8 JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {...}}`,
 * then the byte buffer; offsets are relative to the end of the header.
 */

export interface SafetensorsEntry {
  name: string;
  /** The file's dtype string verbatim ("F32", "F16", "BF16", "I64", ...). */
  fileDtype: string;
  /** Our dtype, or null when we cannot decode it (such entries are skipped by the readers). */
  dtype: DType | null;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Bytes before the data buffer: 8 + N. */
  dataStart: number;
  entries: SafetensorsEntry[];
  metadata: Record<string, string>;
}

// Null-prototype tables: a dtype named "toString" or "__proto__" must not find Object.prototype's members.
const DTYPES: Record<string, DType> = Object.assign(Object.create(null), { F32: 'f32', F16: 'f16', BF16: 'bf16' });
const FILE_DTYPE_BYTES: Record<string, number> = Object.assign(Object.create(null), { F64: 8, I64: 8, U64: 8, F32: 4, I32: 4, U32: 4, F16: 2, BF16: 2, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1 });
/** Dtypes the format defines that we read (others are reported, not decoded). */
export const SUPPORTED_FILE_DTYPES = Object.keys(DTYPES);
/** The reference implementation caps the header at 100 MB; a larger one means a corrupt file. */
const MAX_HEADER_BYTES = 100_000_000;

/** Reads N from the first 8 bytes. */
export function headerLength(first8: Uint8Array): number {
  if (first8.byteLength < 8) throw new ModelFormatError('safetensors file is shorter than its 8-byte header length', { expected: '>= 8 bytes', received: `${first8.byteLength} bytes` });
  const view = new DataView(first8.buffer, first8.byteOffset, 8);
  const lo = view.getUint32(0, true);
  const hi = view.getUint32(4, true);
  const n = hi * 2 ** 32 + lo;
  if (n < 2 || n > MAX_HEADER_BYTES) {
    throw new ModelFormatError('safetensors header length is implausible (is this really a safetensors file?)', { expected: `2..${MAX_HEADER_BYTES}`, received: n });
  }
  return n;
}

/** Parses and validates the JSON header. `fileSize` (when known) bounds the data offsets. */
export function parseHeader(headerBytes: Uint8Array, fileSize?: number): SafetensorsHeader {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (cause) {
    throw new ModelFormatError('safetensors header is not valid UTF-8 JSON', { cause });
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) {
    throw new ModelFormatError('safetensors header must be a JSON object', { expected: 'object', received: json });
  }
  const dataStart = 8 + headerBytes.byteLength;
  const entries: SafetensorsEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const fileDtype = typeof e?.dtype === 'string' ? e.dtype : String(e?.dtype);
    const shape = e?.shape;
    const offsets = e?.data_offsets;
    if (!Object.hasOwn(FILE_DTYPE_BYTES, fileDtype)) throw new ModelFormatError(`tensor "${name}" has an unknown dtype`, { expected: Object.keys(FILE_DTYPE_BYTES).join('|'), received: fileDtype });
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0) || !Number.isSafeInteger(numel(shape))) throw new ModelFormatError(`tensor "${name}" has an invalid shape`, { expected: 'list of non-negative integers', received: shape });
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[1] < offsets[0]) {
      throw new ModelFormatError(`tensor "${name}" has invalid data_offsets`, { expected: '[begin, end] with 0 <= begin <= end', received: JSON.stringify(offsets) });
    }
    const [begin, end] = offsets as [number, number];
    const bytes = numel(shape) * FILE_DTYPE_BYTES[fileDtype];
    if (end - begin !== bytes) {
      throw new ModelFormatError(`tensor "${name}" data_offsets do not match its shape`, { expected: `${bytes} bytes for ${fileDtype}[${shape.join(',')}]`, received: `${end - begin} bytes` });
    }
    if (fileSize !== undefined && dataStart + end > fileSize) {
      throw new ModelFormatError(`tensor "${name}" extends past the end of the file (truncated download?)`, { expected: `file of >= ${dataStart + end} bytes`, received: `${fileSize} bytes` });
    }
    entries.push({ name, fileDtype, dtype: DTYPES[fileDtype] ?? null, shape: shape as number[], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin);
  // The format requires the buffer to be fully indexed with no holes or overlaps.
  let cursor = 0;
  for (const e of entries) {
    if (e.begin !== cursor) {
      throw new ModelFormatError(`safetensors tensors overlap or leave a hole at "${e.name}"`, { expected: `begin ${cursor}`, received: e.begin });
    }
    cursor = e.end;
  }
  return { dataStart, entries, metadata };
}

/** Parses a whole safetensors file already in memory. Entries with undecodable dtypes are skipped. */
export function readSafetensors(bytes: Uint8Array): Map<string, RawTensor> {
  const n = headerLength(bytes.subarray(0, 8));
  if (bytes.byteLength < 8 + n) throw new ModelFormatError('safetensors file ends inside its header', { expected: `>= ${8 + n} bytes`, received: `${bytes.byteLength} bytes` });
  const header = parseHeader(bytes.subarray(8, 8 + n), bytes.byteLength);
  const out = new Map<string, RawTensor>();
  for (const e of header.entries) {
    if (!e.dtype) continue;
    out.set(e.name, { dtype: e.dtype, shape: e.shape, data: bytes.subarray(header.dataStart + e.begin, header.dataStart + e.end) });
  }
  return out;
}

export interface StreamSafetensorsOptions {
  /** Called for every entry whose dtype we do not decode (F64, I64, I8, ...): it is skipped, not yielded. */
  onSkipped?: (name: string, fileDtype: string) => void;
  /** Given: U32 entries (quantised codes and zero points, src/model/QUANT.md) are passed here with their bytes instead of skipped. */
  onU32?: (name: string, shape: number[], data: Uint8Array) => void;
  /** Called once with the header's `__metadata__`. */
  onMetadata?: (metadata: Record<string, string>) => void;
}

/**
 * Parses a safetensors byte stream while it downloads, yielding each tensor as soon as its bytes
 * are in, so a caller can upload it to the GPU and let it go: peak memory is one tensor plus one
 * network chunk, not the whole file (bge-m3 in f32 is 2.2 GB). Linear in the number of chunks.
 */
export async function* streamSafetensors(stream: ReadableStream<Uint8Array>, totalBytes?: number | null, opts: StreamSafetensorsOptions = {}): AsyncGenerator<{ name: string; tensor: RawTensor }> {
  const q = new ByteQueue(stream, 'safetensors stream');
  try {
    const n = headerLength(await q.need(8, 'the header length'));
    const header = parseHeader(await q.need(n, 'the header'), totalBytes ?? undefined);
    opts.onMetadata?.(header.metadata);
    let cursor = 0;
    for (const e of header.entries) {
      if (e.begin > cursor) await q.skip(e.begin - cursor, 'padding');
      cursor = e.end;
      if (!e.dtype && e.fileDtype === 'U32' && opts.onU32) {
        opts.onU32(e.name, e.shape, await q.need(e.end - e.begin, `tensor "${e.name}"`));
        continue;
      }
      if (!e.dtype) {
        await q.skip(e.end - e.begin, `tensor "${e.name}"`);
        opts.onSkipped?.(e.name, e.fileDtype);
        continue;
      }
      let data: Uint8Array | null = await q.need(e.end - e.begin, `tensor "${e.name}"`);
      yield { name: e.name, tensor: { dtype: e.dtype, shape: e.shape, data } };
      // A suspended generator keeps its locals: drop the reference so the consumer's copy is the only one.
      data = null;
    }
  } finally {
    // A consumer that stops early (error, abort) must not leave the download running.
    await q.close();
  }
}

export { DTYPE_BYTES };
