import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { REPO_ROOT } from '../tools/fixtures/paths.ts';

// Code, docs and comments refer to the shared data as ../shared/..., never by a machine's absolute path.
// The pattern is assembled so this file does not match itself.
const MACHINE_PATH = new RegExp(['/work', '/root', '/tmp'].map((p) => `${p}/`).join('|'));

it('no tracked text file names a machine-specific absolute path (the work, root or tmp folders)', () => {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\0').filter(Boolean);
  const text = files.filter((f) => /\.(ts|js|mjs|cjs|py|sh|md|json|html|css|yml|yaml|toml)$/.test(f) && !f.startsWith('fixtures/'));
  expect(text.length).toBeGreaterThan(50);
  const hits = text.flatMap((f) =>
    readFileSync(resolve(REPO_ROOT, f), 'utf8')
      .split('\n')
      .flatMap((line, i) => (MACHINE_PATH.test(line) ? [`${f}:${i + 1}: ${line.trim().slice(0, 120)}`] : [])),
  );
  expect(hits).toEqual([]);
});
