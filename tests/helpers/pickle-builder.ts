/**
 * Hand-built protocol-2 pickles for crafted torch files (tests of the reader's limits). Opcodes as in
 * CPython's Lib/pickletools.py. Only what the tests need: strings, ints, tuples, globals, persistent ids.
 */
export class PickleBuilder {
  private bytes: number[] = [0x80, 2];

  op(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  /** BINUNICODE */
  str(s: string): this {
    const e = new TextEncoder().encode(s);
    this.op(0x58, e.length & 0xff, (e.length >> 8) & 0xff, (e.length >> 16) & 0xff, e.length >>> 24);
    for (const b of e) this.bytes.push(b);
    return this;
  }
  /** BININT */
  int(v: number): this {
    return this.op(0x4a, v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff);
  }
  global(module: string, name: string): this {
    this.op(0x63);
    for (const b of new TextEncoder().encode(`${module}\n${name}\n`)) this.bytes.push(b);
    return this;
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  /** collections.OrderedDict() */
  orderedDict(): this {
    return this.global('collections', 'OrderedDict').op(0x29, 0x52);
  }
  /** _rebuild_tensor_v2(('storage', torch.<cls>, key, 'cpu', numel), offset, (shape...), (stride...), False, OrderedDict()) */
  tensor(cls: string, key: string, numel: number, shape: number[], offset = 0): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark().str('storage').global('torch', cls).str(key).str('cpu').int(numel).tuple().op(0x51);
    this.int(offset).mark();
    for (const s of shape) this.int(s);
    this.tuple().mark();
    let stride = 1;
    const strides: number[] = [];
    for (let d = shape.length - 1; d >= 0; d--) {
      strides.unshift(stride);
      stride *= shape[d];
    }
    for (const s of strides) this.int(s);
    this.tuple().op(0x89).orderedDict().tuple().op(0x52);
    return this;
  }
  /** BINPUT / BINGET (u8 index) */
  put(i: number): this {
    return this.op(0x71, i);
  }
  get(i: number): this {
    return this.op(0x68, i);
  }
  stop(): Uint8Array {
    return Uint8Array.from([...this.bytes, 0x2e]);
  }
}
