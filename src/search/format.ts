/**
 * The index file: one binary blob holding a whole index (export/import) or one persisted chunk.
 * The layout is documented in src/search/FORMAT.md (sections, persisted chunks, Parquet); in short:
 *
 *   bytes 0–7    magic "M3WEBIDX"
 *   bytes 8–11   u32 LE format version (FORMAT_VERSION)
 *   bytes 12–15  u32 LE byte length H of the header JSON
 *   bytes 16…    header JSON (UTF-8), then zero padding to a multiple of 8
 *   sections     each at the offset its header entry gives (relative to the file start, 8-aligned), little-endian
 *
 * Codes are stored as the index holds them (int8 codes and scales, sign words), so an imported index
 * scores exactly as the one exported.
 */
import { IndexFormatError } from '../errors.ts';
import type { DenseStorage, Output } from './types.ts';

export const MAGIC = 'M3WEBIDX';
export const FORMAT_VERSION = 1;

/** What identifies an index; a mismatch on any of modelId, layers, dims is an IndexMismatchError on load. */
export interface IndexHeader {
  schema: number;
  modelId: string;
  layers: number | null;
  dims: number;
  storage: DenseStorage;
  outputs: Output[];
  colbertDim: number | null;
  colbertStorage: 'f32' | 'int8';
  /**
   * Schema 3: the d values binary+int8's codes are taken against (sign bits of v − centre, int8 of v − centre; fixed
   * by the first commit: the mean of its dense vectors, or IndexOptions.centre), else null. Schema 1 lacks it (codes of v).
   */
  centre?: number[] | null;
}

type Typed = Float32Array | Int8Array | Uint32Array | Uint8Array;
const CTORS = { f32: Float32Array, i8: Int8Array, u32: Uint32Array, u8: Uint8Array } as const;
type Kind = keyof typeof CTORS;

export interface FileContents {
  header: IndexHeader;
  count: number;
  sections: Record<string, Typed>;
}

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new IndexFormatError('index files are little-endian and this platform is big-endian', { expected: 'little-endian', received: 'big-endian' });

function kindOf(a: Typed): Kind {
  if (a instanceof Float32Array) return 'f32';
  if (a instanceof Int8Array) return 'i8';
  if (a instanceof Uint32Array) return 'u32';
  return 'u8';
}

const pad8 = (n: number) => (n + 7) & ~7;

export function encodeFile(c: FileContents): Uint8Array {
  const names = Object.keys(c.sections);
  const table: Record<string, { kind: Kind; offset: number; length: number }> = {};
  // Offsets depend on the header's length, which depends on the offsets' digits: iterate to a fixed point.
  let json = '';
  let base = 0;
  for (let iter = 0; iter < 4; iter++) {
    let off = base;
    for (const n of names) {
      const a = c.sections[n];
      table[n] = { kind: kindOf(a), offset: off, length: a.length };
      off = pad8(off + a.byteLength);
    }
    json = JSON.stringify({ ...c.header, count: c.count, sections: table });
    const nb = pad8(16 + new TextEncoder().encode(json).length);
    if (nb === base) break;
    base = nb;
  }
  const head = new TextEncoder().encode(json);
  const last = names.length ? table[names[names.length - 1]] : null;
  const total = last ? pad8(last.offset + c.sections[names[names.length - 1]].byteLength) : base;
  const out = new Uint8Array(total);
  out.set(new TextEncoder().encode(MAGIC), 0);
  const dv = new DataView(out.buffer);
  dv.setUint32(8, FORMAT_VERSION, true);
  dv.setUint32(12, head.length, true);
  out.set(head, 16);
  for (const n of names) {
    const a = c.sections[n];
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), table[n].offset);
  }
  return out;
}

export function decodeFile(bytes: Uint8Array): FileContents {
  if (!(bytes instanceof Uint8Array) || bytes.length < 16) throw new IndexFormatError('index file too short', { expected: 'at least 16 bytes', received: bytes?.length });
  const magic = new TextDecoder().decode(bytes.subarray(0, 8));
  if (magic !== MAGIC) throw new IndexFormatError('not an m3web index file (bad magic)', { expected: `"${MAGIC}"`, received: magic });
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = dv.getUint32(8, true);
  if (version !== FORMAT_VERSION) throw new IndexFormatError('unsupported index file version', { expected: String(FORMAT_VERSION), received: version });
  const hl = dv.getUint32(12, true);
  if (16 + hl > bytes.length) throw new IndexFormatError('index file header is truncated', { expected: `${16 + hl} bytes`, received: bytes.length });
  let meta: IndexHeader & { count: number; sections: Record<string, { kind: Kind; offset: number; length: number }> };
  try {
    meta = JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + hl)));
  } catch (e) {
    throw new IndexFormatError('index file header is not JSON', { received: 'unparseable header', cause: e });
  }
  const sections: Record<string, Typed> = {};
  // Copy into a fresh aligned buffer when the view is misaligned (a slice of a larger fetch).
  const aligned = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  for (const [name, s] of Object.entries(meta.sections ?? {})) {
    const C = CTORS[s.kind];
    if (!C || s.offset % 8 !== 0 || s.offset + s.length * C.BYTES_PER_ELEMENT > bytes.length) {
      throw new IndexFormatError(`index file section "${name}" is out of bounds or of unknown kind`, { expected: `within ${bytes.length} bytes`, received: s });
    }
    sections[name] = new C(aligned.buffer as ArrayBuffer, aligned.byteOffset + s.offset, s.length);
  }
  const { count, sections: _t, ...header } = meta;
  return { header: header as IndexHeader, count, sections };
}

/** UTF-8 JSON as a byte section. */
export const jsonSection = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
export const readJsonSection = <T>(a: Typed | undefined, what: string): T => {
  if (!(a instanceof Uint8Array)) throw new IndexFormatError(`index file lacks section "${what}"`, { expected: `section ${what}`, received: a });
  return JSON.parse(new TextDecoder().decode(a)) as T;
};
