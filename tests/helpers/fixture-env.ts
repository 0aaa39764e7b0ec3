// The fixture models served over loopback plus a Node WebGPU device, for test files that drive the real
// EmbedService / M3Client: made in beforeAll, released in afterAll (the fields are set once beforeAll ran).
import { afterAll, beforeAll } from 'vitest';
import { createNodeGpu, type NodeGpu } from '../../src/gpu/node-gpu.ts';
import { ensureFixtures } from '../../tools/fixtures/generate.ts';
import { startModelServer, type ModelServer } from './model-server.ts';

export function fixtureServerAndGpu(): { server: ModelServer; gpu: NodeGpu } {
  const env = {} as { server: ModelServer; gpu: NodeGpu };
  beforeAll(async () => {
    ensureFixtures();
    env.server = await startModelServer();
    env.gpu = await createNodeGpu();
  });
  afterAll(async () => {
    env.gpu?.device.destroy();
    await env.server?.close();
  });
  return env;
}
