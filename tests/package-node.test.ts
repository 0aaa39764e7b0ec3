// 'm3web/node' as a user gets it: imported by its bare name from a fresh app that installed the packed tarball
// (tests/helpers/package-app.ts), run in a plain Node process, on a local model folder. Its dense, sparse and
// ColBERT outputs must match the CPU reference.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MODELS_DIR } from '../tools/fixtures/paths.ts';
import { diffFromReference, packedApp, type M3Outputs } from './helpers/package-app.ts';

const TEXTS = ['a local folder', 'un dossier local', 'папка'];

describe("the packed package's Node entry", () => {
  it("imports 'm3web/node' from the installed tarball and embeds a local model folder (dense + sparse + ColBERT)", async () => {
    const app = packedApp();
    const { stdout } = await promisify(execFile)('node', ['node-embed.mjs', resolve(MODELS_DIR, 'xlmr-tiny'), ...TEXTS], { cwd: app.dir, maxBuffer: 16 << 20 });
    const out = JSON.parse(stdout) as M3Outputs & { icd: string };
    expect([out.n, out.dims]).toEqual([TEXTS.length, 52]);
    const d = await diffFromReference('xlmr-tiny', TEXTS, out);
    console.log(`[package-node] ${app.size} bytes packed, ${app.files.length} files; WebGPU via ${out.icd}; max |Δ| dense ${d.dense.toExponential(2)}, sparse ${d.sparse.toExponential(2)}, colbert ${d.colbert.toExponential(2)}`);
    expect(d.dense).toBeLessThanOrEqual(1e-4);
    expect(d.sparseIdsEqual).toBe(true);
    expect(d.sparse).toBeLessThanOrEqual(1e-4);
    expect(d.colbertCounts).toEqual(d.refCounts);
    expect(d.colbert).toBeLessThanOrEqual(1e-4);
  }, 600_000);
});
