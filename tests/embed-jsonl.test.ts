import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/model/load.ts';
import { ReferenceEncoder } from '../src/reference/model.ts';
import { ensureFixtures } from '../tools/fixtures/generate.ts';
import { REPO_ROOT } from '../tools/fixtures/paths.ts';
import { startModelServer, type ModelServer } from './helpers/model-server.ts';

let server: ModelServer;
beforeAll(async () => {
  ensureFixtures();
  server = await startModelServer();
});
afterAll(() => server?.close());

describe('tools/embed-jsonl.ts (bulk indexing CLI on the Node engine)', () => {
  it('embeds every line, keeps the input fields, and matches the CPU reference', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm3web-jsonl-'));
    const input = join(dir, 'in.jsonl');
    const output = join(dir, 'out.jsonl');
    const rows = [
      { id: 'a', text: 'first document' },
      { id: 'b', text: 'le deuxième document' },
      { id: 'c', text: 'третий' },
    ];
    writeFileSync(input, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    await promisify(execFile)('npx', ['tsx', 'tools/embed-jsonl.ts', '--model', server.folderUrl('xlmr-tiny'), '--in', input, '--out', output, '--layers', '2', '--dims', '16', '--batch', '2'], { cwd: REPO_ROOT });
    const out = readFileSync(output, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(out.map((o) => o.id)).toEqual(['a', 'b', 'c']);
    const ref = new ReferenceEncoder(await loadModel(server.folderUrl('xlmr-tiny'))).embed(
      rows.map((r) => r.text),
      { layers: 2, dims: 16 },
    ).embeddings;
    out.forEach((o, i) => {
      expect(o.embedding).toHaveLength(16);
      for (let j = 0; j < 16; j++) expect(Math.abs(o.embedding[j] - ref[i * 16 + j])).toBeLessThanOrEqual(1e-4);
    });
  }, 120_000);

  it('takes a local model folder and gives the same vectors as the URL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm3web-jsonl-'));
    const input = join(dir, 'in.jsonl');
    writeFileSync(input, ['{"text":"first document"}', '', '{"text":"третий"}'].join('\n'));
    const run = async (model: string, out: string) => {
      await promisify(execFile)('npx', ['tsx', 'tools/embed-jsonl.ts', '--model', model, '--in', input, '--out', join(dir, out), '--dims', '8'], { cwd: REPO_ROOT });
      return readFileSync(join(dir, out), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).embedding as number[]);
    };
    const local = await run('fixtures/models/xlmr-tiny', 'local.jsonl'); // relative to the cwd, no './': an existing folder wins over a hub id
    const url = await run(server.folderUrl('xlmr-tiny'), 'url.jsonl');
    expect(local).toHaveLength(2);
    expect(local).toEqual(url);
  }, 120_000);

  it('prints a typed error as one line and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm3web-jsonl-'));
    const input = join(dir, 'in.jsonl');
    writeFileSync(input, '{"text":"a"}\n');
    const fail = async (...args: string[]) => {
      const r = await promisify(execFile)('npx', ['tsx', 'tools/embed-jsonl.ts', '--in', input, '--out', join(dir, 'out.jsonl'), ...args], { cwd: REPO_ROOT }).then(
        () => null,
        (e: { code: number; stderr: string }) => e,
      );
      expect(r, 'the CLI must fail').not.toBeNull();
      const lines = r!.stderr.split('\n').filter((l) => l.trim() && !/^npm warn/.test(l));
      expect(
        lines.some((l) => /^\s+at /.test(l)),
        r!.stderr,
      ).toBe(false); // no stack trace
      return { code: r!.code, last: lines.at(-1)! };
    };
    const layers = await fail('--model', 'fixtures/models/xlmr-tiny', '--layers', '7');
    expect(layers).toEqual({ code: 1, last: 'InvalidInputError: option "layers" is out of range; expected an integer in 1..3; received 7' });
    const missing = await fail('--model', './no-such-model-folder');
    expect(missing.code).toBe(1);
    expect(missing.last).toMatch(/^InvalidInputError: model folder does not exist; expected a directory with config\.json; received "\/.*no-such-model-folder"$/);
  }, 120_000);
});
