// A vite dev server of this repo's config for the search spec alone, without HMR and file watching:
// the spec keeps state across its own reloads, and other edits in the working tree must not reload
// its page mid-test (the shared e2e server reloads every page whose module graph changes).
import { createServer, type ViteDevServer } from 'vite';
import { REPO_ROOT } from '../tools/fixtures/paths.ts';

export async function startQuietServer(): Promise<{ base: string; close: () => Promise<void> }> {
  const server: ViteDevServer = await createServer({ root: REPO_ROOT, configFile: `${REPO_ROOT}/vite.config.ts`, logLevel: 'error', server: { host: '127.0.0.1', port: 0, hmr: false, watch: null } });
  await server.listen();
  const addr = server.httpServer!.address() as import('node:net').AddressInfo;
  return { base: `http://127.0.0.1:${addr.port}`, close: () => server.close() };
}
