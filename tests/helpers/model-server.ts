import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { extname, resolve, sep } from 'node:path';
import { MODELS_DIR } from '../../tools/fixtures/paths.ts';

export interface ModelServer {
  /** Base URL of a fixture folder: http://127.0.0.1:PORT/models/<name>/ */
  folderUrl(name: string): string;
  /** Endpoint that mimics the hub: /<org>/<name>/resolve/<rev>/<file> maps to <root>/<name>/<file> (see below). */
  endpoint: string;
  requests: string[];
  /** Request headers, in request order (to check what a client sent, e.g. Authorization). */
  headers: IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** The token the mimic's gated repositories accept. */
export const GATED_TOKEN = 'hf_m3web_test_token';

/**
 * A loopback HTTP server over fixtures/models (or another root), mimicking the layouts model files come from:
 *  - a plain folder: /models/<name>/<file>;
 *  - the hub: /<org>/<name>/resolve/<rev>/<file> → <root>/<name>/<file> for rev "main", else
 *    <root>/<name>@<rev>/<file> (a 404 with X-Error-Code RevisionNotFound when that folder is absent).
 *    The revision travels as one percent-encoded segment ('refs%2Fpr%2F1'), as on the hub;
 *  - org "gated": 401 with X-Error-Code GatedRepo unless `Authorization: Bearer GATED_TOKEN`;
 *  - prefix /stall/ (before either layout): binary files send their headers and first half, then nothing;
 *  - /html/...: an HTML page with status 200 for every request, like a dev server's SPA fallback.
 * Missing files are real 404s (X-Error-Code EntryNotFound). Files are streamed from disk, never read whole.
 */
export async function startModelServer(root = MODELS_DIR): Promise<ModelServer> {
  const requests: string[] = [];
  const headers: IncomingHttpHeaders[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const raw = new URL(req.url ?? '/', 'http://x').pathname;
    const segments = raw.split('/').map(decodeURIComponent);
    const path = segments.join('/');
    requests.push(path);
    headers.push(req.headers);
    const notFound = (code = 'EntryNotFound') => {
      res.writeHead(404, { 'Content-Type': 'text/plain', 'X-Error-Code': code });
      res.end('Entry not found');
    };
    if (path.startsWith('/html/')) {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><html><body>SPA fallback</body></html>');
      return;
    }
    const stall = segments[1] === 'stall';
    const s = stall ? ['', ...segments.slice(2)] : segments;
    let rel: string | null = null;
    if (s[1] === 'models' && s.length > 2) rel = s.slice(2).join('/');
    else if (s.length > 5 && s[3] === 'resolve') {
      const [, org, name, , rev] = s;
      if (org === 'gated' && req.headers.authorization !== `Bearer ${GATED_TOKEN}`) {
        res.writeHead(401, { 'Content-Type': 'text/plain', 'X-Error-Code': 'GatedRepo' });
        res.end('Access to this repository is restricted');
        return;
      }
      const folder = rev === 'main' ? name : `${name}@${rev}`;
      if (!existsSync(resolve(root, folder))) return notFound('RevisionNotFound');
      rel = `${folder}/${s.slice(5).join('/')}`;
    }
    const file = rel ? resolve(root, rel) : null;
    if (!file || !file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) return notFound();
    const size = statSync(file).size;
    const binary = extname(file) !== '.json';
    res.writeHead(200, { 'Content-Type': binary ? 'application/octet-stream' : 'application/json', 'Content-Length': size });
    if (stall && binary) {
      // Half the body, then silence: the connection stays open until the client gives up (or the server closes).
      createReadStream(file, { end: Math.max(0, Math.floor(size / 2) - 1) }).on('data', (c) => res.write(c));
      return;
    }
    createReadStream(file).pipe(res);
  });
  server.on('connection', (sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
  });
  // Longer than any pause between a test's requests, so fetch never reuses a socket the server just closed.
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    folderUrl: (name) => `${base}/models/${name}/`,
    endpoint: base,
    requests,
    headers,
    close: () =>
      new Promise<void>((r) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => r());
      }),
  };
}
