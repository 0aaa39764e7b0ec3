/**
 * `bytes` as a ReadableStream that delivers `size` bytes a pull (the last chunk shorter), as a download would:
 * the streaming parsers' tests (src/model/safetensors, torch-stream; tests/loader-fuzz.test.ts) cut files at every
 * chunk boundary with it.
 */
export function chunked(bytes: Uint8Array, size: number): ReadableStream<Uint8Array> {
  let o = 0;
  return new ReadableStream({
    pull(c) {
      if (o >= bytes.byteLength) return c.close();
      c.enqueue(bytes.slice(o, o + size));
      o += size;
    },
  });
}
