/**
 * A safetensors file as a byte stream (huggingface/safetensors README: u64 little-endian header length N, N bytes of
 * JSON `{name: {dtype, shape, data_offsets}, "__metadata__": {...}}`, then the tensors' bytes in order). Written as a
 * stream so a quantised copy of a large model goes into Cache Storage (src/model/quant-cache.ts) without a second,
 * file-sized buffer: each chunk is a view of a tensor's own bytes.
 */
import { InvalidInputError } from '../errors.ts';
import { DTYPE_BYTES, numel, type DType } from './tensor.ts';

/** A float tensor or packed u32 words (quantised codes, zero points: src/model/QUANT.md), little-endian bytes. */
export interface WritableTensor {
  dtype: DType | 'u32';
  shape: number[];
  data: Uint8Array;
}

const FILE_DTYPE = { f32: 'F32', f16: 'F16', bf16: 'BF16', u32: 'U32' } as const;
/** Chunks handed to the stream: small enough for a consumer to keep few in flight. */
const CHUNK = 4 << 20;

export interface SafetensorsFile {
  /** The whole file's size in bytes (header included). */
  size: number;
  /** A fresh stream of the file's bytes (each call starts again). */
  stream(): ReadableStream<Uint8Array>;
}

/** The file holding `tensors` in the given order; the header is space-padded to a multiple of 8 bytes, as the reference writer does. */
export function safetensorsFile(tensors: readonly [string, WritableTensor][], metadata: Record<string, string> = { format: 'pt' }): SafetensorsFile {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const want = numel(t.shape) * (t.dtype === 'u32' ? 4 : DTYPE_BYTES[t.dtype]);
    if (t.data.byteLength !== want) throw new InvalidInputError(`safetensors: tensor "${name}" has bytes that do not match its shape`, { expected: `${want} bytes for [${t.shape.join(', ')}] ${t.dtype}`, received: t.data.byteLength });
    header[name] = { dtype: FILE_DTYPE[t.dtype], shape: t.shape, data_offsets: [offset, offset + want] };
    offset += want;
  }
  let json = JSON.stringify(header);
  while ((8 + new TextEncoder().encode(json).byteLength) % 8 !== 0) json += ' ';
  const text = new TextEncoder().encode(json);
  const head = new Uint8Array(8 + text.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(text.byteLength), true);
  head.set(text, 8);
  const size = head.byteLength + offset;
  return {
    size,
    stream() {
      function* chunks(): Generator<Uint8Array> {
        yield head;
        for (const [, t] of tensors) for (let o = 0; o < t.data.byteLength; o += CHUNK) yield t.data.subarray(o, Math.min(o + CHUNK, t.data.byteLength));
      }
      const it = chunks();
      return new ReadableStream<Uint8Array>(
        {
          pull(c) {
            const r = it.next();
            if (r.done) c.close();
            else c.enqueue(r.value);
          },
        },
        { highWaterMark: 0 },
      );
    },
  };
}
