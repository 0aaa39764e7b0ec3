/**
 * Node's IndexStore (store.ts) for the bulk CLI and Node tests: a directory with `manifest.json` and
 * one file per chunk. Every file is written to a temporary name and renamed into place (rename is
 * atomic on POSIX file systems), chunks before the manifest, so a killed process leaves the last
 * committed state plus orphans that the next open deletes.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IndexStore, Manifest } from './store.ts';

async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export async function openDirStore(dir: string): Promise<IndexStore> {
  await mkdir(dir, { recursive: true });
  const manifestPath = join(dir, 'manifest.json');
  const readManifest = async (): Promise<Manifest | null> => {
    try {
      return JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  };
  const m = await readManifest();
  const keep = new Set(m?.chunks.map((c) => c.key) ?? []);
  for (const f of await readdir(dir)) if (f !== 'manifest.json' && !keep.has(f)) await rm(join(dir, f), { force: true });
  return {
    backend: 'fs',
    name: dir,
    readManifest,
    readChunk: async (key) => new Uint8Array(await readFile(join(dir, key))),
    async commit(put, manifest) {
      const old = await readManifest();
      for (const p of put) await writeAtomic(join(dir, p.key), p.bytes);
      await writeAtomic(manifestPath, JSON.stringify(manifest));
      const still = new Set(manifest.chunks.map((c) => c.key));
      for (const c of old?.chunks ?? []) if (!still.has(c.key)) await rm(join(dir, c.key), { force: true });
    },
    destroy: () => rm(dir, { recursive: true, force: true }),
  };
}
