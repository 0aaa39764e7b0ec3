// The project's layering rules, checked on the source tree: the CPU reference is the oracle (production
// code never imports it), the UI never imports GPU or engine code, and worker entry files only wire.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../tools/fixtures/paths.ts';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const src = files(join(REPO_ROOT, 'src')).map((p) => relative(REPO_ROOT, p));
const imports = (file: string) => [...readFileSync(join(REPO_ROOT, file), 'utf8').matchAll(/(?:^|\n)\s*(?:import|export)[^;]*?from\s+'([^']+)'/g)].map((m) => m[1]);
/** Test-side files: tests, kernel references and cases, test helpers, and the oracle itself. */
const testSide = (f: string) => /\.test\.ts$|\.ref\.ts$|\.cases\.ts$|\.bench\.ts$|kernels\/testing\.ts$/.test(f) || f.startsWith('src/reference/');

describe('layering', () => {
  it('production code does not import the CPU reference (src/reference)', () => {
    const offenders = src.filter((f) => !testSide(f)).filter((f) => imports(f).some((i) => /(^|\/)reference\//.test(i)));
    expect(offenders).toEqual([]);
  });

  it('the UI (src/app) imports neither src/gpu nor src/engine', () => {
    const offenders = src.filter((f) => f.startsWith('src/app/')).filter((f) => imports(f).some((i) => /\/(gpu|engine)\//.test(i)));
    expect(offenders).toEqual([]);
  });

  it('worker entry files only wire (at most 20 lines each)', () => {
    const workers = readdirSync(join(REPO_ROOT, 'workers')).filter((f) => f.endsWith('.ts'));
    expect(workers.length).toBeGreaterThan(0);
    for (const w of workers)
      expect(
        readFileSync(join(REPO_ROOT, 'workers', w), 'utf8')
          .trimEnd()
          .split('\n').length,
        w,
      ).toBeLessThanOrEqual(20);
  });
});
