import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../engine/engine.ts';
import { createNodeGpu } from '../gpu/node-gpu.ts';
import { GpuRuntime } from '../gpu/runtime.ts';
import { ReferenceEncoder } from '../reference/model.ts';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { MODELS_DIR, REPO_ROOT } from '../../tools/fixtures/paths.ts';
import { startModelServer, type ModelServer } from '../../tests/helpers/model-server.ts';
import { loadModel, type LoadedModel, type LoadProgress } from './load.ts';

/**
 * pytorch_model.bin written by REAL torch (Debian's /usr/bin/python3 + python3-torch, torch.save with the
 * default zip format; tools/fixtures/torch_save_bin.py) for every family, single and sharded, loaded
 * streamed over HTTP: the weights must equal their safetensors twin bit for bit, and so must the
 * embeddings on the CPU reference and on WebGPU (Node + Dawn).
 */
const PYTHON = '/usr/bin/python3';
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
if (!hasTorch) console.warn(`SKIPPING torch.save .bin tests: ${PYTHON} cannot import torch (apt-get install python3-torch)`);

// bert-tiny's WordPiece tokenizer is vendored under fixtures/tokenizers: every family runs without ../shared.
const FAMILIES = ['bert-tiny', 'xlmr-tiny', 'xlmr-tiny-f16', 'm3bert-tiny'];
const TEXTS = ['The quick brown fox jumps over the lazy dog.', 'Ein kurzer Satz', 'x'];

let tmp: string;
let fixtures: ModelServer;
let bins: ModelServer;
let rt: GpuRuntime;

beforeAll(async () => {
  ensureFixtures();
  tmp = mkdtempSync(join(tmpdir(), 'm3web-bin-'));
  const jobs: string[] = [];
  for (const f of FAMILIES) {
    for (const [suffix, shards] of [
      ['bin', 1],
      ['bin-sharded', 3],
    ] as const) {
      const out = join(tmp, `${f}-${suffix}`);
      cpSync(resolve(MODELS_DIR, f), out, { recursive: true, filter: (src) => !src.endsWith('.safetensors') });
      jobs.push(resolve(MODELS_DIR, f), out, String(shards));
    }
  }
  if (hasTorch) {
    const r = spawnSync(PYTHON, [resolve(REPO_ROOT, 'tools/fixtures/torch_save_bin.py'), ...jobs], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`torch_save_bin.py failed: ${r.stderr}`);
  }
  [fixtures, bins] = await Promise.all([startModelServer(), startModelServer(tmp)]);
  rt = new GpuRuntime((await createNodeGpu()).device);
});
afterAll(async () => {
  rt?.device.destroy();
  await Promise.all([fixtures?.close(), bins?.close()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function expectSameWeights(a: LoadedModel, b: LoadedModel): void {
  expect([...b.weights.keys()].sort()).toEqual([...a.weights.keys()].sort());
  for (const [k, t] of a.weights) {
    const u = b.weights.get(k)!;
    expect(u.dtype, k).toBe(t.dtype);
    expect(u.shape, k).toEqual(t.shape);
    expect(Buffer.compare(Buffer.from(u.data), Buffer.from(t.data)), k).toBe(0);
  }
  for (const [k, t] of a.heads) expect(Buffer.compare(Buffer.from(b.heads.get(k)!.data), Buffer.from(t.data)), k).toBe(0);
}

describe.skipIf(!hasTorch).each(FAMILIES)('pytorch_model.bin saved by torch: %s', (family) => {
  it('single file and shards load streamed to the safetensors twin, bit for bit, and embed identically (CPU reference, WebGPU)', async () => {
    const twin = await loadModel(fixtures.folderUrl(family));
    // Streamed: the first tensor is handed on before the download has finished.
    const events: LoadProgress[] = [];
    let loadedAtFirstTensor: number | null = null;
    const single = await loadModel(bins.folderUrl(`${family}-bin`), {
      keepWeights: true,
      onProgress: (p) => events.push(p),
      onTensor: () => {
        const last = events.findLast((e) => e.phase === 'download' && e.file === 'pytorch_model.bin');
        loadedAtFirstTensor ??= last?.phase === 'download' ? last.loaded : null;
      },
    });
    const done = events.findLast((e) => e.phase === 'download' && e.file === 'pytorch_model.bin');
    expect(single.weightFiles).toEqual(['pytorch_model.bin']);
    expect(loadedAtFirstTensor).not.toBeNull();
    expect(loadedAtFirstTensor!).toBeLessThan(done?.phase === 'download' ? done.total! : 0);
    const sharded = await loadModel(bins.folderUrl(`${family}-bin-sharded`));
    expect(sharded.weightFiles).toEqual(['pytorch_model-00001-of-00003.bin', 'pytorch_model-00002-of-00003.bin', 'pytorch_model-00003-of-00003.bin']);
    expectSameWeights(twin, single);
    expectSameWeights(twin, sharded);

    const ref = new ReferenceEncoder(twin).embed(TEXTS).embeddings;
    expect(new ReferenceEncoder(single).embed(TEXTS).embeddings).toEqual(ref);
    expect(new ReferenceEncoder(sharded).embed(TEXTS).embeddings).toEqual(ref);
    const gpu = async (m: LoadedModel) => {
      const e = await Engine.create(rt, m);
      try {
        return (await e.embed(TEXTS)).embeddings;
      } finally {
        e.destroy();
      }
    };
    // The shards hold the same bits as the single file (checked above): one WebGPU comparison suffices.
    expect(await gpu(single)).toEqual(await gpu(twin));
  }, 120_000);
});
