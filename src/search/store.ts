/**
 * Where a persisted index lives: a manifest (the header and the ordered list of committed chunks) and
 * one blob per chunk (an index file of that chunk's rows, format.ts).
 *
 * Consistency rule, for every implementation: `commit` writes the new chunk blobs first, then replaces
 * the manifest in one atomic step, then deletes blobs the new manifest no longer names. A crash or an
 * error before the manifest step leaves the old manifest, whose blobs are all intact; blobs it does not
 * name are orphans, deleted on the next `open`. So each chunk is either its old or its new state.
 *
 * Browser: IndexedDB (via idb) holds the manifest, and the chunks go to OPFS where the browser has it
 * (else into IndexedDB too, written in the same transaction as the manifest). Quota: the commit asks
 * `navigator.storage.estimate()` first and refuses a write that cannot fit (QuotaError, nothing
 * written); a QuotaExceededError raised by the write itself is turned into a QuotaError after the
 * partial blobs are removed.
 */
import { openDB, type IDBPDatabase } from 'idb';
import { QuotaError } from '../errors.ts';
import type { IndexHeader } from './format.ts';

export interface ChunkRef {
  key: string;
  count: number;
  bytes: number;
}

export interface Manifest {
  header: IndexHeader;
  chunks: ChunkRef[];
  /** Next chunk number; keys are never reused, so a rewritten chunk never overwrites a committed blob. */
  seq: number;
}

export interface IndexStore {
  readonly backend: 'opfs' | 'indexeddb' | 'fs';
  readonly name: string;
  readManifest(): Promise<Manifest | null>;
  readChunk(key: string): Promise<Uint8Array>;
  commit(put: { key: string; bytes: Uint8Array }[], manifest: Manifest): Promise<void>;
  /** Deletes the manifest and every blob. */
  destroy(): Promise<void>;
}

const DB = 'm3web-index';

const isQuota = (e: unknown) => e instanceof DOMException && (e.name === 'QuotaExceededError' || e.code === 22);

async function checkQuota(bytes: number): Promise<void> {
  const est = await globalThis.navigator?.storage?.estimate?.();
  if (!est || est.quota === undefined || est.usage === undefined) return;
  if (est.usage + bytes > est.quota) {
    throw new QuotaError(`storing ${bytes} bytes of index chunks would exceed the storage quota`, { expected: `at most ${est.quota - est.usage} bytes free`, received: `${bytes} bytes` });
  }
}

/** The browser store for index `name`: manifest in IndexedDB, chunks in OPFS when available. */
export async function openBrowserStore(name: string, opts: { opfs?: boolean } = {}): Promise<IndexStore> {
  const db = await openDB(DB, 1, {
    upgrade(d) {
      d.createObjectStore('manifests');
      d.createObjectStore('chunks');
    },
  });
  let dir: FileSystemDirectoryHandle | null = null;
  if (opts.opfs !== false && typeof navigator !== 'undefined' && navigator.storage?.getDirectory) {
    try {
      const root = await navigator.storage.getDirectory();
      dir = await (await root.getDirectoryHandle(DB, { create: true })).getDirectoryHandle(encodeURIComponent(name), { create: true });
    } catch {
      dir = null; // OPFS refused (private mode, old browser): chunks go to IndexedDB
    }
  }
  const store = dir ? new OpfsStore(name, db, dir) : new IdbStore(name, db);
  await store.sweep();
  return store;
}

class IdbStore implements IndexStore {
  readonly backend: 'opfs' | 'indexeddb' = 'indexeddb';
  constructor(
    readonly name: string,
    protected db: IDBPDatabase,
  ) {}

  readManifest(): Promise<Manifest | null> {
    return this.db.get('manifests', this.name).then((m) => (m as Manifest | undefined) ?? null);
  }

  async readChunk(key: string): Promise<Uint8Array> {
    const b = (await this.db.get('chunks', `${this.name}/${key}`)) as Uint8Array | undefined;
    if (!b) throw new QuotaError(`chunk ${key} of index "${this.name}" is missing (evicted by the browser?)`, { expected: 'a stored chunk', received: undefined });
    return b;
  }

  async commit(put: { key: string; bytes: Uint8Array }[], manifest: Manifest): Promise<void> {
    await checkQuota(put.reduce((a, p) => a + p.bytes.length, 0));
    const old = await this.readManifest();
    const keep = new Set(manifest.chunks.map((c) => c.key));
    try {
      const tx = this.db.transaction(['manifests', 'chunks'], 'readwrite');
      const chunks = tx.objectStore('chunks');
      for (const p of put) void chunks.put(p.bytes, `${this.name}/${p.key}`);
      for (const c of old?.chunks ?? []) if (!keep.has(c.key)) void chunks.delete(`${this.name}/${c.key}`);
      void tx.objectStore('manifests').put(manifest, this.name);
      await tx.done;
    } catch (e) {
      if (isQuota(e)) throw new QuotaError('the browser refused the index write: storage quota exceeded', { received: 'QuotaExceededError', cause: e });
      throw e;
    }
  }

  /** Chunks in IndexedDB are committed with the manifest, so there are no orphans to sweep. */
  async sweep(): Promise<void> {}

  async destroy(): Promise<void> {
    const tx = this.db.transaction(['manifests', 'chunks'], 'readwrite');
    void tx.objectStore('chunks').delete(IDBKeyRange.bound(`${this.name}/`, `${this.name}/\uffff`));
    void tx.objectStore('manifests').delete(this.name);
    await tx.done;
  }
}

class OpfsStore extends IdbStore {
  override readonly backend = 'opfs' as const;
  constructor(
    name: string,
    db: IDBPDatabase,
    private dir: FileSystemDirectoryHandle,
  ) {
    super(name, db);
  }

  override async readChunk(key: string): Promise<Uint8Array> {
    try {
      const f = await (await this.dir.getFileHandle(key)).getFile();
      return new Uint8Array(await f.arrayBuffer());
    } catch (e) {
      throw new QuotaError(`chunk ${key} of index "${this.name}" is missing from OPFS (evicted by the browser?)`, { expected: 'a stored chunk', received: undefined, cause: e });
    }
  }

  override async commit(put: { key: string; bytes: Uint8Array }[], manifest: Manifest): Promise<void> {
    await checkQuota(put.reduce((a, p) => a + p.bytes.length, 0));
    const old = await this.readManifest();
    const written: string[] = [];
    try {
      for (const p of put) {
        // createWritable writes to a swap file and replaces the target only on close(): a blob is whole or absent.
        const h = await this.dir.getFileHandle(p.key, { create: true });
        written.push(p.key);
        const w = await h.createWritable();
        try {
          await w.write(p.bytes as Uint8Array<ArrayBuffer>);
          await w.close();
        } catch (e) {
          await w.abort().catch(() => {});
          throw e;
        }
      }
      await this.db.put('manifests', manifest, this.name);
    } catch (e) {
      for (const k of written) await this.dir.removeEntry(k).catch(() => {});
      if (isQuota(e)) throw new QuotaError('the browser refused the index write: storage quota exceeded', { received: 'QuotaExceededError', cause: e });
      throw e;
    }
    const keep = new Set(manifest.chunks.map((c) => c.key));
    for (const c of old?.chunks ?? []) if (!keep.has(c.key)) await this.dir.removeEntry(c.key).catch(() => {});
  }

  /** Deletes blobs the manifest does not name (written before a crash, never committed). */
  override async sweep(): Promise<void> {
    const m = await this.readManifest();
    const keep = new Set(m?.chunks.map((c) => c.key) ?? []);
    const names: string[] = [];
    for await (const k of (this.dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(k);
    for (const k of names) if (!keep.has(k)) await this.dir.removeEntry(k).catch(() => {});
  }

  override async destroy(): Promise<void> {
    await this.db.delete('manifests', this.name);
    const names: string[] = [];
    for await (const k of (this.dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(k);
    for (const k of names) await this.dir.removeEntry(k).catch(() => {});
  }
}
