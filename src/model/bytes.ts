import { ModelFormatError } from '../errors.ts';

/**
 * A pull reader over a byte stream for the streamed weight parsers (safetensors.ts, torch-stream.ts).
 *
 * Chunks are kept in an array read from a moving head index (never `shift()`ed: with 16-byte network
 * chunks a 6 MB tensor spans 400k chunks, and shifting each off is quadratic). `take(n)` returns a view
 * of one chunk when the bytes lie in it, else one exactly sized copy: a tensor never exists twice.
 */
export class ByteQueue {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private chunks: Uint8Array[] = [];
  private head = 0;
  /** Bytes buffered and not yet taken. */
  buffered = 0;
  /** Bytes taken so far (the read position in the file). */
  position = 0;
  done = false;

  constructor(
    stream: ReadableStream<Uint8Array>,
    /** Names the file in error messages ("safetensors stream", "torch zip stream"). */
    private readonly what: string,
  ) {
    this.reader = stream.getReader();
  }

  /** Buffers until at least `want` bytes are available or the stream ends. */
  async fill(want: number): Promise<void> {
    while (this.buffered < want && !this.done) {
      const r = await this.reader.read();
      if (r.done) this.done = true;
      else if (r.value.byteLength) {
        this.chunks.push(r.value);
        this.buffered += r.value.byteLength;
      }
    }
  }

  /**
   * Exactly `n` bytes, or a ModelFormatError saying the stream ended early while reading `why`. Large reads
   * are copied into their buffer as the chunks arrive, so a tensor is never held twice (chunks + copy).
   */
  async need(n: number, why: string): Promise<Uint8Array<ArrayBuffer>> {
    const truncated = (missing: number) => new ModelFormatError(`${this.what} ended early while reading ${why} (truncated download?)`, { expected: `${missing} more bytes`, received: `${this.buffered} bytes` });
    await this.fill(Math.min(n, PROGRESSIVE_BYTES));
    if (this.buffered >= n) return this.take(n);
    if (n <= PROGRESSIVE_BYTES) throw truncated(n);
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      if (this.buffered === 0) {
        await this.fill(1);
        if (this.buffered === 0) throw truncated(n - o);
      }
      const c = this.chunks[this.head];
      const k = Math.min(n - o, c.byteLength);
      out.set(c.subarray(0, k), o);
      o += k;
      this.buffered -= k;
      this.position += k;
      this.advance(c, k);
    }
    return out;
  }

  /** Up to `n` bytes from the front without consuming them (fewer at the end of the stream). */
  async peek(n: number): Promise<Uint8Array> {
    await this.fill(n);
    const k = Math.min(n, this.buffered);
    const first = this.chunks[this.head];
    if (k === 0) return new Uint8Array(0);
    if (first.byteLength >= k) return first.subarray(0, k);
    const out = new Uint8Array(k);
    let o = 0;
    for (let i = this.head; o < k; i++) {
      const c = this.chunks[i].subarray(0, k - o);
      out.set(c, o);
      o += c.byteLength;
    }
    return out;
  }

  /** Takes `n` buffered bytes off the front (the caller made sure they are there). */
  take(n: number): Uint8Array<ArrayBuffer> {
    this.buffered -= n;
    this.position += n;
    const first = this.chunks[this.head];
    if (first && first.byteLength >= n) {
      const out = first.subarray(0, n);
      this.advance(first, n);
      // A view of a whole, unshared chunk is handed out as is; a part is copied so a small tensor
      // does not pin a large network chunk (and GPUQueue.writeBuffer wants an ArrayBuffer view).
      return out.byteOffset === 0 && out.byteLength === out.buffer.byteLength && out.buffer instanceof ArrayBuffer ? (out as Uint8Array<ArrayBuffer>) : out.slice();
    }
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.chunks[this.head];
      const k = Math.min(n - o, c.byteLength);
      out.set(c.subarray(0, k), o);
      o += k;
      this.advance(c, k);
    }
    return out;
  }

  /** Puts bytes taken too eagerly back at the front (the streamed zip reader's descriptor scan). */
  unread(bytes: Uint8Array): void {
    if (!bytes.byteLength) return;
    if (this.head > 0) this.chunks[--this.head] = bytes;
    else this.chunks.unshift(bytes);
    this.buffered += bytes.byteLength;
    this.position -= bytes.byteLength;
  }

  /** Drops `n` bytes (padding, records we do not read) without copying them. */
  async skip(n: number, why: string): Promise<void> {
    while (n > 0) {
      await this.fill(1);
      if (this.buffered === 0) throw new ModelFormatError(`${this.what} ended early while skipping ${why} (truncated download?)`, { expected: `${n} more bytes`, received: '0 bytes' });
      const c = this.chunks[this.head];
      const k = Math.min(n, c.byteLength);
      this.buffered -= k;
      this.position += k;
      this.advance(c, k);
      n -= k;
    }
  }

  private advance(chunk: Uint8Array, k: number): void {
    if (k === chunk.byteLength) {
      this.chunks[this.head++] = EMPTY;
      // Compact now and then so the array does not grow with the file.
      if (this.head > 1024 && this.head * 2 > this.chunks.length) {
        this.chunks = this.chunks.slice(this.head);
        this.head = 0;
      }
    } else this.chunks[this.head] = chunk.subarray(k);
  }

  /** Stops the download if it is still running and frees the stream. */
  async close(): Promise<void> {
    this.chunks = [];
    this.head = 0;
    this.buffered = 0;
    if (!this.done) await this.reader.cancel().catch(() => undefined);
    this.reader.releaseLock();
  }
}

const EMPTY = new Uint8Array(0);
/** Reads above this size are assembled progressively (see need). */
const PROGRESSIVE_BYTES = 1 << 16;
