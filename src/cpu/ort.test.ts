import { afterEach, expect, it, vi } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import { canUseThreads, chooseThreads } from './ort.ts';

afterEach(() => vi.unstubAllGlobals());

it('a worker without cross-origin isolation gets one thread, whatever is asked', () => {
  vi.stubGlobal('WorkerGlobalScope', function WorkerGlobalScope() {});
  vi.stubGlobal('crossOriginIsolated', false);
  expect(canUseThreads()).toBe(false);
  expect(chooseThreads(4)).toMatchObject({ threads: 1, reason: expect.stringMatching(/not cross-origin isolated/) });
});

it("an isolated worker gets onnxruntime-web's default min(4, ⌈cores/2⌉), or what is asked", () => {
  vi.stubGlobal('WorkerGlobalScope', function WorkerGlobalScope() {});
  vi.stubGlobal('crossOriginIsolated', true);
  for (const [cores, threads] of [
    [1, 1],
    [2, 1],
    [6, 3],
    [16, 4],
  ]) {
    vi.stubGlobal('navigator', { hardwareConcurrency: cores });
    expect(chooseThreads().threads, `${cores} cores`).toBe(threads);
  }
  expect(chooseThreads(3).threads).toBe(3);
  expect(() => chooseThreads(-1)).toThrow(InvalidInputError);
});
