import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { SHARED_DATA } from '../../tools/fixtures/paths.ts';
import { describe, expect, it } from 'vitest';
import { ModelFormatError } from '../errors.ts';
import { goldenWriterFixture, torchStateDictRecords, writeTorchStateDict, writeTorchZip } from '../../tools/fixtures/torch-writer.ts';
import { DTYPE_BYTES, numel, toFloat32, type DType, type RawTensor } from './tensor.ts';
import { readTorchStateDict } from './torch.ts';

/** fixtures/goldens/bge-m3-heads.json, written by tools/goldens/torch_heads_golden.py with real torch. */
interface GoldenTensor {
  key: string;
  dtype: DType | 'i64';
  shape: number[];
  numel: number;
  sum: number;
  sum_sq: number;
  first8: number[];
  last8: number[];
  at: Record<string, number>;
  values?: number[];
}
interface Golden {
  torch_version: string;
  heads: Record<string, { file_bytes: number; sha256: string; tensors: GoldenTensor[] }>;
  writer: {
    sha256: string;
    sha256_no_byteorder: string;
    entries: string[];
    torch_resave_identical_to_no_byteorder_output: boolean;
    tensors: GoldenTensor[];
  };
  torch_saved: Record<string, { base64: string; tensors?: GoldenTensor[]; reject?: string }>;
}

const golden: Golden = JSON.parse(readFileSync(new URL('../../fixtures/goldens/bge-m3-heads.json', import.meta.url), 'utf8'));
// Read through tools/fixtures/paths.ts so M3WEB_SHARED_DATA (the no-shared CI pass) applies here too.
const headsDir = pathToFileURL(`${SHARED_DATA}/heads/bge-m3/`);
const headsExist = existsSync(new URL('colbert_linear.pt', headsDir)) && existsSync(new URL('sparse_linear.pt', headsDir));
if (!headsExist) {
  console.warn(`SKIPPING real bge-m3 head tests: ${headsDir.pathname} is absent (../shared/data is not beside this checkout, or M3WEB_SHARED_DATA points elsewhere)`);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Compare a tensor with what real torch read: exact values, sums to 1e-6 relative. */
function expectMatchesGolden(t: RawTensor | undefined, g: GoldenTensor): void {
  expect(t, `tensor ${g.key}`).toBeDefined();
  expect(t!.dtype).toBe(g.dtype);
  expect(t!.shape).toEqual(g.shape);
  const v = toFloat32(t!);
  expect(v.length).toBe(g.numel);
  expect(Array.from(v.subarray(0, 8))).toEqual(g.first8);
  expect(Array.from(v.subarray(Math.max(0, v.length - 8)))).toEqual(g.last8);
  for (const [i, value] of Object.entries(g.at)) expect(v[Number(i)], `${g.key}[${i}]`).toBe(value);
  if (g.values) expect(Array.from(v)).toEqual(g.values);
  let sum = 0;
  let sumSq = 0;
  for (const x of v) {
    sum += x;
    sumSq += x * x;
  }
  expect(Math.abs(sum - g.sum)).toBeLessThanOrEqual(1e-6 * Math.max(Math.abs(g.sum), 1e-30));
  expect(Math.abs(sumSq - g.sum_sq)).toBeLessThanOrEqual(1e-6 * Math.max(g.sum_sq, 1e-30));
}

/** Run fn and return the ModelFormatError it throws (fails the test otherwise). */
function formatError(fn: () => unknown): ModelFormatError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelFormatError);
    return e as ModelFormatError;
  }
  throw new Error('expected a ModelFormatError, nothing was thrown');
}

/** Deterministic pseudo-random bytes (xorshift32), so f32/f16/bf16 payloads include NaNs, infinities, subnormals, -0. */
function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function randomTensor(dtype: DType, shape: number[], seed: number): RawTensor {
  return { dtype, shape, data: randomBytes(numel(shape) * DTYPE_BYTES[dtype], seed) };
}

/** Every ZIP entry's name, payload offset and size, via the central directory and local headers (no ZIP comment). */
function zipPayloads(file: Uint8Array): { name: string; start: number; size: number }[] {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const eocd = file.byteLength - 22;
  expect(view.getUint32(eocd, true)).toBe(0x06054b50);
  const count = view.getUint16(eocd + 10, true);
  const out: { name: string; start: number; size: number }[] = [];
  for (let i = 0, at = view.getUint32(eocd + 16, true); i < count; i++) {
    expect(view.getUint32(at, true)).toBe(0x02014b50);
    const nameLen = view.getUint16(at + 28, true);
    const local = view.getUint32(at + 42, true);
    out.push({
      name: new TextDecoder().decode(file.subarray(at + 46, at + 46 + nameLen)),
      start: local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true),
      size: view.getUint32(at + 24, true),
    });
    at += 46 + nameLen + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
  }
  return out;
}

describe.skipIf(!headsExist)('readTorchStateDict on the real bge-m3 heads (vs torch ' + golden.torch_version + ')', () => {
  for (const [file, g] of Object.entries(golden.heads)) {
    it(file, () => {
      const bytes = new Uint8Array(readFileSync(new URL(file, headsDir)));
      expect(sha256(bytes), 'the head file differs from the one the golden was made from').toBe(g.sha256);
      const sd = readTorchStateDict(bytes);
      expect([...sd.keys()]).toEqual(g.tensors.map((t) => t.key));
      for (const gt of g.tensors) expectMatchesGolden(sd.get(gt.key), gt);
    });
  }

  it('torch-writer reproduces both real files byte for byte from the parsed tensors', () => {
    for (const file of ['colbert_linear.pt', 'sparse_linear.pt']) {
      const real = new Uint8Array(readFileSync(new URL(file, headsDir)));
      // The files were written by torch >= 2.1, which adds a random .data/serialization_id record: reuse it.
      const id = zipPayloads(real).find((e) => e.name.endsWith('/.data/serialization_id'))!;
      const serializationId = new TextDecoder().decode(real.subarray(id.start, id.start + id.size));
      const ours = writeTorchStateDict(readTorchStateDict(real), file.replace('.pt', ''), { serializationId });
      expect(Buffer.from(ours).equals(Buffer.from(real)), file).toBe(true);
    }
  });

  it('colbert and sparse heads have the documented shapes', () => {
    const colbert = readTorchStateDict(new Uint8Array(readFileSync(new URL('colbert_linear.pt', headsDir))));
    const sparse = readTorchStateDict(new Uint8Array(readFileSync(new URL('sparse_linear.pt', headsDir))));
    expect(colbert.get('weight')!.shape).toEqual([1024, 1024]);
    expect(colbert.get('bias')!.shape).toEqual([1024]);
    expect(sparse.get('weight')!.shape).toEqual([1, 1024]);
    expect(sparse.get('bias')!.shape).toEqual([1]);
  });
});

describe('readTorchStateDict on files written by torch.save (torch ' + golden.torch_version + ')', () => {
  for (const name of ['state_dict_protocol2', 'state_dict_protocol4']) {
    it(`${name}: module state_dict with _metadata, an nn.Parameter, and views sharing a storage at offsets`, () => {
      const g = golden.torch_saved[name];
      const sd = readTorchStateDict(Buffer.from(g.base64, 'base64'));
      expect([...sd.keys()]).toEqual(g.tensors!.map((t) => t.key));
      for (const gt of g.tensors!) expectMatchesGolden(sd.get(gt.key), gt);
    });
  }

  it('rejects a non-contiguous tensor', () => {
    const e = formatError(() => readTorchStateDict(Buffer.from(golden.torch_saved.non_contiguous.base64, 'base64')));
    expect(e.message).toMatch(/"t" is not contiguous/);
    expect(e.received).toContain('(1, 3)');
  });

  it('rejects an int64 tensor, naming its storage class', () => {
    const e = formatError(() => readTorchStateDict(Buffer.from(golden.torch_saved.int64.base64, 'base64')));
    expect(e.message).toMatch(/torch\.LongStorage/);
  });
});

describe('writeTorchStateDict', () => {
  it('writes the exact bytes real torch loaded in the golden script, with the values torch read', () => {
    const fixture = goldenWriterFixture();
    const file = writeTorchStateDict(fixture);
    // The golden script ran this writer, torch.load-ed its output and recorded this hash and what torch read.
    expect(sha256(file)).toBe(golden.writer.sha256);
    // ... and torch 1.x's own torch.save of what it loaded equals our output without the byteorder record.
    expect(golden.writer.torch_resave_identical_to_no_byteorder_output).toBe(true);
    expect(sha256(writeTorchStateDict(fixture, 'archive', { byteorder: false }))).toBe(golden.writer.sha256_no_byteorder);

    expect([...fixture.keys()]).toEqual(golden.writer.tensors.map((t) => t.key));
    for (const g of golden.writer.tensors) expectMatchesGolden(fixture.get(g.key), g);
    const back = readTorchStateDict(file);
    for (const [key, t] of fixture) expect(back.get(key)).toEqual(t);
  });

  it('aligns every payload to 64 bytes and lists records in torch order', () => {
    const file = writeTorchStateDict(goldenWriterFixture());
    const entries = zipPayloads(file);
    expect(entries.map((e) => e.name)).toEqual(golden.writer.entries);
    for (const e of entries) expect(e.start % 64, e.name).toBe(0);
    expect(torchStateDictRecords(goldenWriterFixture()).map(([n]) => `archive/${n}`)).toEqual(golden.writer.entries);
  });

  it('round-trips f32, f16 and bf16 tensors of odd shapes bit-exactly (NaN payloads, -0, subnormals included)', () => {
    const tensors = new Map<string, RawTensor>([
      ['a.f32', randomTensor('f32', [3, 1, 7], 1)],
      ['b.f16', randomTensor('f16', [5, 3, 1, 2], 2)],
      ['c.bf16', randomTensor('bf16', [13], 3)],
      ['scalar.f16', randomTensor('f16', [], 4)],
      ['empty.bf16', randomTensor('bf16', [2, 0, 3], 5)],
      ['big.f32', randomTensor('f32', [257, 3], 6)],
      ['ключ/with spaces', randomTensor('f32', [1], 7)],
    ]);
    for (const archive of ['archive', 'colbert_linear']) {
      const back = readTorchStateDict(writeTorchStateDict(tensors, archive));
      expect([...back.keys()]).toEqual([...tensors.keys()]);
      for (const [key, t] of tensors) {
        const b = back.get(key)!;
        expect(b.dtype).toBe(t.dtype);
        expect(b.shape).toEqual(t.shape);
        expect(Buffer.from(b.data).equals(Buffer.from(t.data))).toBe(true);
      }
    }
  });

  it('accepts a plain record and handles > 1000 entries (SETITEMS batching, LONG_BINPUT/LONG_BINGET memo)', () => {
    const record: Record<string, RawTensor> = {};
    for (let i = 0; i < 1001; i++) record[`layer.${i}`] = randomTensor(i % 3 === 0 ? 'f32' : i % 3 === 1 ? 'f16' : 'bf16', [i % 4], i + 1);
    const back = readTorchStateDict(writeTorchStateDict(record));
    expect(back.size).toBe(1001);
    for (const [key, t] of Object.entries(record)) expect(back.get(key)).toEqual(t);
  });
});

describe('readTorchStateDict rejects malformed input with ModelFormatError', () => {
  const tensors = { w: randomTensor('f16', [4, 4], 9), b: randomTensor('f16', [4], 10) };
  const good = writeTorchStateDict(tensors);
  /** A hand-written protocol-2 pickle inside an otherwise valid torch zip. */
  const withPickle = (...ops: (number | string)[]) => {
    const bytes: number[] = [];
    for (const op of ops) typeof op === 'number' ? bytes.push(op) : bytes.push(...new TextEncoder().encode(op));
    return writeTorchZip('archive', [
      ['data.pkl', Uint8Array.from(bytes)],
      ['version', new TextEncoder().encode('3\n')],
    ]);
  };

  it('truncated file', () => {
    for (const len of [good.length - 1, good.length - 30, Math.floor(good.length / 2), 100, 0]) {
      expect(() => readTorchStateDict(good.subarray(0, len)), `length ${len}`).toThrow(ModelFormatError);
    }
  });

  it('not a zip (an HTML page a dev server served instead of the file)', () => {
    const e = formatError(() => readTorchStateDict(new TextEncoder().encode('<!doctype html><html><body>index</body></html>')));
    expect(e.message).toMatch(/not a torch zip archive/);
  });

  it('legacy (pre-1.6) torch.save format', () => {
    expect(formatError(() => readTorchStateDict(Uint8Array.of(0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46))).message).toMatch(/legacy/);
  });

  it('unknown global, named in the error', () => {
    const e = formatError(() => readTorchStateDict(withPickle(0x80, 2, 'c', 'os\nsystem\n', 'X', 2, 0, 0, 0, 'ls', 0x85, 'R', '.')));
    expect(e.message).toMatch(/unsupported global os\.system/);
    expect(e.received).toContain('os.system');
  });

  it('unsupported opcode, named by its byte', () => {
    const e = formatError(() => readTorchStateDict(withPickle(0x80, 2, 'I', '42\n', '.')));
    expect(e.message).toMatch(/opcode 0x49 \(INT 'I'\)/);
  });

  it('pickle that ends early', () => {
    expect(formatError(() => readTorchStateDict(withPickle(0x80, 2, 'X', 10, 0, 0, 0, 'abc'))).message).toMatch(/ends early/);
  });

  it('compressed (deflate) entry, naming the method', () => {
    const bad = good.slice();
    const central = Buffer.from(bad).indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    bad[central + 10] = 8; // first central entry (data.pkl): method 8
    const e = formatError(() => readTorchStateDict(bad));
    expect(e.message).toMatch(/data\.pkl" is compressed/);
    expect(e.received).toMatch(/method 8 \(deflate\)/);
  });

  it('corrupted payload (CRC-32 mismatch)', () => {
    const bad = good.slice();
    bad[zipPayloads(good)[2].start] ^= 0xff; // first byte of archive/data/0
    const e = formatError(() => readTorchStateDict(bad));
    expect(e.message).toMatch(/"archive\/data\/0" fails its CRC-32 check/);
  });

  it('storage shorter than its persistent id says', () => {
    const records = torchStateDictRecords(tensors).map(([n, d]): [string, Uint8Array] => [n, n === 'data/0' ? d.subarray(2) : d]);
    const e = formatError(() => readTorchStateDict(writeTorchZip('archive', records)));
    expect(e.message).toMatch(/storage "0" has the wrong byte length/);
    expect(e.expected).toBe('32 bytes (16 x torch.HalfStorage)');
  });

  it('missing storage record and missing data.pkl', () => {
    const noStorage = torchStateDictRecords(tensors).filter(([n]) => n !== 'data/1');
    expect(formatError(() => readTorchStateDict(writeTorchZip('archive', noStorage))).expected).toBe('archive/data/1');
    const noPickle = torchStateDictRecords(tensors).filter(([n]) => n !== 'data.pkl');
    expect(formatError(() => readTorchStateDict(writeTorchZip('archive', noPickle))).message).toMatch(/no data\.pkl/);
  });

  it('big-endian byteorder record', () => {
    const records = torchStateDictRecords(tensors).map(([n, d]): [string, Uint8Array] => [n, n === 'byteorder' ? new TextEncoder().encode('big') : d]);
    expect(formatError(() => readTorchStateDict(writeTorchZip('archive', records))).message).toMatch(/little-endian/);
  });
});
