import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortError, M3Error, ModelAccessError, NonFiniteWeightError, StallTimeoutError, WeightError } from '../errors.ts';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { MODELS_DIR } from '../../tools/fixtures/paths.ts';
import { GATED_TOKEN, startModelServer, type ModelServer } from '../../tests/helpers/model-server.ts';
import { loadModel } from './load.ts';

/**
 * The loopback hub mimic serving a bge-m3-shaped fixture laid out as BAAI/bge-m3's repository is:
 * pytorch_model.bin and no safetensors, the .pt heads, modules.json + 1_Pooling/, an onnx/ folder. Plus the
 * hub conventions (revision, subfolder, endpoint override, gated repos and tokens) and the load's typed
 * failures (abort, stall, NaN weights, undecodable dtypes).
 */
let tmp: string;
let hub: ModelServer;

/** Rewrites one entry of a safetensors header (same data bytes), e.g. to relabel its dtype. */
function editSafetensors(file: string, name: string, edit: (e: { dtype: string; shape: number[] }) => void): void {
  const bytes = readFileSync(file);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  edit(header[name]);
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(file, Buffer.concat([len, h, bytes.subarray(8 + n)]));
}

beforeAll(async () => {
  ensureFixtures();
  tmp = mkdtempSync(join(tmpdir(), 'm3web-hub-'));
  const copy = (from: string, to: string) => cpSync(resolve(MODELS_DIR, from), join(tmp, to), { recursive: true });
  copy('xlmr-tiny-bin', 'bge-m3-tiny');
  copy('xlmr-tiny', 'xlmr-tiny');
  // A monorepo at revision v1 with the model in a subfolder.
  mkdirSync(join(tmp, 'mono@v1', 'models'), { recursive: true });
  copy('xlmr-tiny-bin', 'mono@v1/models/xlmr');
  copy('xlmr-tiny', 'locked');
  copy('xlmr-tiny', 'nan');
  const st = join(tmp, 'nan/model.safetensors');
  const bytes = readFileSync(st);
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8'));
  bytes.writeFloatLE(NaN, 8 + n + header['encoder.layer.1.output.dense.weight'].data_offsets[0] + 4 * 17);
  writeFileSync(st, bytes);
  copy('xlmr-tiny', 'f64');
  editSafetensors(join(tmp, 'f64/model.safetensors'), 'encoder.layer.0.output.LayerNorm.bias', (e) => ((e.dtype = 'F64'), (e.shape = [26])));
  copy('xlmr-tiny', 'i8');
  editSafetensors(join(tmp, 'i8/model.safetensors'), 'embeddings.LayerNorm.weight', (e) => ((e.dtype = 'I8'), (e.shape = [4 * 52])));
  hub = await startModelServer(tmp);
});
afterAll(async () => {
  await hub?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<M3Error> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(M3Error);
    return e as M3Error;
  }
  throw new Error('expected a rejection');
}

describe('loading from the hub mimic', () => {
  it('loads a bge-m3-shaped repo (pytorch_model.bin, .pt heads, modules.json, 1_Pooling, onnx/) by hub id with hubEndpoint', async () => {
    const m = await loadModel('BAAI/bge-m3-tiny', { hubEndpoint: hub.endpoint });
    const twin = await loadModel(`${hub.endpoint}/models/xlmr-tiny/`);
    expect(m.source.id).toBe('BAAI/bge-m3-tiny@main');
    expect(m.weightFiles).toEqual(['pytorch_model.bin']);
    expect(m.pooling.pooling).toBe('cls');
    expect([...m.heads.keys()].sort()).toEqual(['colbert_linear.bias', 'colbert_linear.weight', 'sparse_linear.bias', 'sparse_linear.weight']);
    for (const [k, t] of twin.weights) expect(Buffer.compare(Buffer.from(m.weights.get(k)!.data), Buffer.from(t.data)), k).toBe(0);
    const asked = hub.requests.filter((r) => r.startsWith('/BAAI/bge-m3-tiny/'));
    // safetensors first (404), then the .bin; the onnx/ folder is not the encoder's business.
    expect(asked.indexOf('/BAAI/bge-m3-tiny/resolve/main/model.safetensors')).toBeLessThan(asked.indexOf('/BAAI/bge-m3-tiny/resolve/main/pytorch_model.bin'));
    expect(asked.some((r) => r.includes('/onnx/'))).toBe(false);
  });

  it('honours revision and subfolder (the revision travels as one segment)', async () => {
    const m = await loadModel('org/mono', { hubEndpoint: hub.endpoint, revision: 'v1', subfolder: 'models/xlmr' });
    expect(m.source.id).toBe('org/mono@v1/models/xlmr');
    expect(m.weightFiles).toEqual(['pytorch_model.bin']);
    expect(hub.requests).toContain('/org/mono/resolve/v1/models/xlmr/config.json');
    const e = await rejection(loadModel('org/mono', { hubEndpoint: hub.endpoint, revision: 'v2', subfolder: 'models/xlmr' }));
    expect(e.message).toMatch(/HTTP 404.*RevisionNotFound/);
  });

  it('a gated repo is a ModelAccessError saying it needs a token; the token is sent as Authorization and never shows in errors', async () => {
    const e = await rejection(loadModel('gated/locked', { hubEndpoint: hub.endpoint }));
    expect(e).toBeInstanceOf(ModelAccessError);
    expect((e as ModelAccessError).status).toBe(401);
    expect(e.message).toMatch(/needs a token/);
    expect(e.received).toBe('"no token"');
    const wrong = 'hf_wrong_secret_value';
    const e2 = await rejection(loadModel('gated/locked', { hubEndpoint: hub.endpoint, token: wrong }));
    expect(e2).toBeInstanceOf(ModelAccessError);
    expect(JSON.stringify({ m: e2.message, s: e2.stack, r: e2.received, x: e2.expected })).not.toContain(wrong);
    const before = hub.headers.length;
    const m = await loadModel('gated/locked', { hubEndpoint: hub.endpoint, token: GATED_TOKEN });
    expect(m.config.family).toBe('xlm-roberta');
    expect(hub.headers.slice(before).every((h) => h.authorization === `Bearer ${GATED_TOKEN}`)).toBe(true);
  });

  it('abort is an AbortError and a server that stops sending is a StallTimeoutError', async () => {
    const ctl = new AbortController();
    const p = loadModel(`${hub.endpoint}/models/xlmr-tiny/`, { signal: ctl.signal, onProgress: (ev) => ev.phase === 'download' && ev.file === 'model.safetensors' && ev.loaded > 0 && ctl.abort() });
    expect(await rejection(p)).toBeInstanceOf(AbortError);
    const pre = new AbortController();
    pre.abort();
    expect(await rejection(loadModel(`${hub.endpoint}/models/xlmr-tiny/`, { signal: pre.signal }))).toBeInstanceOf(AbortError);
    const t0 = Date.now();
    const e = await rejection(loadModel(`${hub.endpoint}/stall/models/xlmr-tiny/`, { stallTimeoutMs: 400 }));
    expect(e).toBeInstanceOf(StallTimeoutError);
    expect(Date.now() - t0).toBeLessThan(20_000);
    // Time the consumer spends on a tensor (a GPU upload) is not a stalled server.
    let slow = 0;
    const ok = await loadModel(`${hub.endpoint}/models/xlmr-tiny/`, { stallTimeoutMs: 400, onTensor: () => (slow++ < 2 ? new Promise((r) => setTimeout(r, 600)) : undefined) });
    expect(ok.config.family).toBe('xlm-roberta');
  });

  it('a NaN weight is a NonFiniteWeightError naming it (checkFinite: false skips the check)', async () => {
    const e = await rejection(loadModel(`${hub.endpoint}/models/nan/`));
    expect(e).toBeInstanceOf(NonFiniteWeightError);
    expect(e.message).toMatch(/"encoder\.layer\.1\.output\.dense\.weight".*element 17/);
    const m = await loadModel(`${hub.endpoint}/models/nan/`, { checkFinite: false });
    expect(m.weights.has('encoder.layer.1.output.dense.weight')).toBe(true);
  });

  it('an F64 or I8 encoder weight is named with its dtype, not reported missing', async () => {
    const e = await rejection(loadModel(`${hub.endpoint}/models/f64/`));
    expect(e).toBeInstanceOf(WeightError);
    expect(e.message).toMatch(/"encoder\.layer\.0\.output\.LayerNorm\.bias" is stored as F64/);
    const e2 = await rejection(loadModel(`${hub.endpoint}/models/i8/`));
    expect(e2.message).toMatch(/"embeddings\.LayerNorm\.weight" is stored as I8/);
  });
});
