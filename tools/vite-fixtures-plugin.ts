import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, resolve, sep } from 'node:path';
import type { Plugin } from 'vite';
import { MODELS_DIR, REPO_ROOT } from './fixtures/paths.ts';

const PUBLIC_MODELS = resolve(REPO_ROOT, 'public/models');

const TYPES: Record<string, string> = { '.json': 'application/json', '.md': 'text/markdown', '.onnx': 'application/octet-stream' };

/**
 * Serves generated fixture models at /models/<name>/<file> in dev and preview, the way a static host
 * or the hub would: real 404s for missing files (never index.html — transformers.js #142), a
 * content-type per file, and Content-Length so downloads report progress.
 */
export function fixtureModelsPlugin(root = MODELS_DIR): Plugin {
  const handler = (req: { url?: string }, res: import('node:http').ServerResponse, next: () => void) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (!url.pathname.startsWith('/models/')) return next();
    const file = resolve(root, decodeURIComponent(url.pathname.slice('/models/'.length)));
    // A shipped model in public/models/ (m3-tiny) is vite's to serve (dev: public/, preview: the build's copy).
    const shipped = resolve(PUBLIC_MODELS, decodeURIComponent(url.pathname.slice('/models/'.length)));
    if (shipped.startsWith(PUBLIC_MODELS + sep) && existsSync(shipped) && statSync(shipped).isFile()) return next();
    if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.statusCode = 404;
      res.setHeader('Content-Type', 'text/plain');
      res.end('not found');
      return;
    }
    res.setHeader('Content-Type', TYPES[extname(file)] ?? 'application/octet-stream');
    res.setHeader('Content-Length', String(statSync(file).size));
    res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
    createReadStream(file).pipe(res);
  };
  return {
    name: 'm3web-fixture-models',
    configureServer(server) {
      server.middlewares.use(handler);
    },
    configurePreviewServer(server) {
      server.middlewares.use(handler);
    },
  };
}
