import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'tools/**/*.test.ts', 'tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two files at a time on the 2-core CI machine (vitest's default is cores − 1 = 1): many files wait on a
    // subprocess (Chromium for the bench check, npm pack) or on lavapipe, so one worker left a core idle.
    maxWorkers: 2,
  },
});
