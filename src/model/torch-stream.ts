/**
 * `pytorch_model.bin` (a torch.save zip, see torch.ts) read while it downloads: the zip's local headers are
 * walked in file order, never the central directory at the end, so nothing waits for the whole file.
 *
 * torch writes data.pkl first, so by the time the storages (`data/<key>`, in sorted-string key order) arrive
 * we know which tensors view each one; every tensor is handed on as soon as its storage is in, as a view of
 * it (tensors sharing a storage share its bytes), and the storage is then dropped. A file whose storages come
 * before its data.pkl makes the reader hold them until data.pkl arrives; `stats.maxHeldBytes` says how much.
 *
 * Sizes: torch (miniz, `PyTorchStreamWriter`) sets general-purpose flag bit 3 and writes zero sizes in the
 * local headers, then a data descriptor ("PK\x07\x08", CRC-32, compressed and uncompressed size: 4 bytes
 * each, 8 in ZIP64) after each payload. A storage's size is known from data.pkl (numel × element bytes); the
 * other records (data.pkl itself, byteorder, version) are read up to the descriptor whose CRC and sizes
 * match the bytes before it. Every payload's CRC-32 is checked.
 */
import { M3Error, ModelFormatError } from '../errors.ts';
import { ByteQueue } from './bytes.ts';
import type { StorageRef, TensorRef } from './pickle-values.ts';
import type { RawTensor } from './tensor.ts';
import { checkByteorder, checkStorageLength, DecodeBudget, parseStateDictPickle, tensorView, type StateDictLayout } from './torch.ts';
import { crc32, crc32Update, SIG_CENTRAL, SIG_DATA_DESCRIPTOR, SIG_EOCD, SIG_LOCAL, ZIP_METHODS } from './zip.ts';

/** data.pkl, byteorder and version are small; a record of unknown size past this is a corrupt file. */
const MAX_SCANNED_RECORD_BYTES = 256 << 20;
const SIG_ZIP64_EOCD = 0x06064b50;

export interface TorchStreamStats {
  /** Storage bytes held now because data.pkl had not arrived yet, and the most ever held. */
  heldBytes: number;
  maxHeldBytes: number;
}

export interface TorchStreamOptions {
  /** Tensors of dtypes RawTensor cannot hold (int64 position_ids, f64, ...) are skipped and reported here. */
  onSkipped?: (name: string, storageClass: string) => void;
  stats?: TorchStreamStats;
}

/** Yields every float tensor of a streamed torch.save state_dict, in storage order. */
export async function* streamTorchStateDict(stream: ReadableStream<Uint8Array>, opts: TorchStreamOptions = {}): AsyncGenerator<{ name: string; tensor: RawTensor }> {
  const q = new ByteQueue(stream, 'torch zip stream');
  const stats = opts.stats ?? { heldBytes: 0, maxHeldBytes: 0 };
  const budget = new DecodeBudget();
  let layout: StateDictLayout | null = null;
  let byStorage = new Map<string, [string, TensorRef][]>();
  const held = new Map<string, Uint8Array>();
  const seen = new Set<string>();
  let prefix: string | null = null;

  /**
   * The tensors over one storage, as views of its bytes. An array, not a generator: a finished delegate
   * generator kept in the suspended frame would keep the storage alive while the next one downloads.
   */
  function views(ref: StorageRef, data: Uint8Array): ({ name: string; tensor: RawTensor } | null)[] {
    checkStorageLength(ref, data.byteLength);
    seen.add(ref.key);
    const out: { name: string; tensor: RawTensor }[] = [];
    for (const [name, t] of byStorage.get(ref.key) ?? []) {
      if (t.storage.dtype === null) {
        opts.onSkipped?.(name, t.storage.storageClass);
        continue;
      }
      const tensor = tensorView(t, data);
      budget.add(name, tensor.data.byteLength, q.position);
      out.push({ name, tensor });
    }
    return out;
  }

  try {
    for (;;) {
      const sig = await q.peek(4);
      if (sig.byteLength < 4) throw new ModelFormatError('torch zip stream ended before its central directory (truncated download?)', { expected: 'a local header or the central directory', received: `${sig.byteLength} bytes` });
      const s = u32(sig, 0);
      if (s === SIG_CENTRAL || s === SIG_EOCD || s === SIG_ZIP64_EOCD) break;
      if (s !== SIG_LOCAL) {
        const legacy = q.position === 0 && sig[0] === 0x80 && sig[1] <= 5;
        throw new ModelFormatError(legacy ? 'torch file uses the legacy (pre-1.6, non-zip) torch.save format, which is not supported; re-save it with a current torch' : 'torch zip stream: expected a local file header', {
          expected: 'signature PK\\x03\\x04',
          received: `0x${s.toString(16)} at offset ${q.position}`,
        });
      }
      const h = await q.need(30, 'a local file header');
      const flags = u16(h, 6);
      const method = u16(h, 8);
      const headerCrc = u32(h, 14);
      let size: number | null = u32(h, 22);
      const compressed = u32(h, 18);
      const name = new TextDecoder().decode(await q.need(u16(h, 26), 'a zip entry name'));
      const extra = await q.need(u16(h, 28), 'a zip extra field');
      if (method !== 0) {
        throw new ModelFormatError(`torch zip entry "${name}" is compressed; only stored (uncompressed) entries are supported`, { expected: 'compression method 0 (stored)', received: `method ${method} (${ZIP_METHODS[method] ?? 'unknown'})` });
      }
      if (prefix === null) {
        const slash = name.indexOf('/');
        if (slash <= 0) throw new ModelFormatError('torch zip: first entry is not inside an archive folder', { expected: '<archive>/...', received: name });
        prefix = name.slice(0, slash + 1);
      }
      if (!name.startsWith(prefix)) throw new ModelFormatError('torch zip: entry outside the archive folder', { expected: `${prefix}...`, received: name });
      const rel = name.slice(prefix.length);
      const storageKey = rel.startsWith('data/') ? rel.slice(5) : null;
      const ref = storageKey !== null && layout ? layout.storages.get(storageKey) : undefined;
      const deferred = (flags & 8) !== 0;
      if (!deferred) {
        if (size === 0xffffffff || compressed === 0xffffffff) size = zip64Size(extra, name);
        else if (compressed !== size) throw new ModelFormatError(`torch zip entry "${name}" is stored but its sizes differ`, { expected: `compressed size ${size}`, received: compressed });
      } else size = ref ? ref.numel * ref.elementBytes : null;

      let data: Uint8Array | null;
      let crc: number;
      if (size === null) ({ data, crc } = await scanToDescriptor(q, name));
      else {
        data = await q.need(size, `entry "${name}"`);
        crc = crc32(data);
        if (deferred) await readDescriptor(q, name, crc, size);
      }
      if (!deferred && crc !== headerCrc) throw crcError(name, headerCrc, crc);

      if (rel === 'data.pkl') {
        if (layout) throw new ModelFormatError('torch zip holds two data.pkl records', { expected: 'one', received: name });
        layout = parseStateDictPickle(data);
        byStorage = new Map();
        for (const entry of layout.tensors) {
          const list = byStorage.get(entry[1].storage.key) ?? [];
          list.push(entry);
          byStorage.set(entry[1].storage.key, list);
        }
        const early = [...held].flatMap(([key, bytes]) => {
          const r = layout!.storages.get(key);
          return r ? views(r, bytes) : [];
        });
        held.clear();
        for (let i = 0; i < early.length; i++) {
          yield early[i]!;
          early[i] = null;
        }
        stats.heldBytes = 0;
      } else if (rel === 'byteorder') checkByteorder(data);
      else if (storageKey !== null) {
        if (seen.has(storageKey) || held.has(storageKey)) throw new ModelFormatError(`torch zip holds storage "${storageKey}" twice`, { expected: 'one record per storage', received: name });
        if (!layout) {
          // Stored before data.pkl: keep it (and say so) until we know which tensors view it.
          held.set(storageKey, data);
          stats.heldBytes += data.byteLength;
          stats.maxHeldBytes = Math.max(stats.maxHeldBytes, stats.heldBytes);
        } else if (ref) {
          const out = views(ref, data);
          for (let i = 0; i < out.length; i++) {
            yield out[i]!;
            out[i] = null;
          }
        }
      }
      // A suspended generator keeps its locals alive: drop the storage so the consumer holds the only reference.
      data = null;
    }
    if (!layout) throw new ModelFormatError('torch zip has no data.pkl', { expected: `${prefix ?? '<archive>/'}data.pkl`, received: 'no such record before the central directory' });
    for (const key of layout.storages.keys()) {
      if (!seen.has(key)) throw new ModelFormatError('torch zip lacks a storage record', { expected: `${prefix}data/${key}`, received: 'no such entry' });
    }
  } catch (err) {
    if (err instanceof M3Error || (err as Error)?.name === 'AbortError' || err === stream) throw err;
    throw new ModelFormatError(`torch zip stream is malformed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  } finally {
    // The central directory (and anything after an error) is not needed: stop the download.
    await q.close();
  }
}

function u16(b: Uint8Array, at: number): number {
  return b[at] | (b[at + 1] << 8);
}
function u32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}
function u64(b: Uint8Array, at: number): number {
  return u32(b, at) + u32(b, at + 4) * 2 ** 32;
}

function crcError(name: string, want: number, got: number): ModelFormatError {
  return new ModelFormatError(`torch zip entry "${name}" fails its CRC-32 check (file corrupted)`, {
    expected: `0x${want.toString(16).padStart(8, '0')}`,
    received: `0x${got.toString(16).padStart(8, '0')}`,
  });
}

/** Uncompressed size from a local header's ZIP64 extra field (id 0x0001: size, then compressed size). */
function zip64Size(extra: Uint8Array, name: string): number {
  for (let x = 0; x + 4 <= extra.byteLength;) {
    const id = u16(extra, x);
    const len = u16(extra, x + 2);
    if (id === 0x0001 && len >= 16 && x + 4 + len <= extra.byteLength) {
      const size = u64(extra, x + 4);
      if (size !== u64(extra, x + 12)) throw new ModelFormatError(`torch zip entry "${name}" is stored but its sizes differ`, { expected: `compressed size ${size}`, received: u64(extra, x + 12) });
      return size;
    }
    x += 4 + len;
  }
  throw new ModelFormatError(`torch zip entry "${name}" has no ZIP64 sizes`, { expected: 'a ZIP64 extra field (id 0x0001)', received: `${extra.byteLength} extra bytes` });
}

/** The data descriptor after a payload of known size: optional signature, CRC, sizes of 4 (or, ZIP64, 8) bytes. */
async function readDescriptor(q: ByteQueue, name: string, crc: number, size: number): Promise<void> {
  const d = await q.peek(24);
  const o = d.byteLength >= 4 && u32(d, 0) === SIG_DATA_DESCRIPTOR ? 4 : 0;
  if (d.byteLength < o + 12) throw new ModelFormatError(`torch zip stream ended inside the data descriptor of "${name}"`, { expected: `${o + 12} bytes`, received: `${d.byteLength} bytes` });
  if (u32(d, o) !== crc) throw crcError(name, u32(d, o), crc);
  if (u32(d, o + 4) === size && u32(d, o + 8) === size && size < 0xffffffff) {
    q.take(o + 12);
    return;
  }
  if (d.byteLength >= o + 20 && u64(d, o + 4) === size && u64(d, o + 12) === size) {
    q.take(o + 20);
    return;
  }
  throw new ModelFormatError(`torch zip entry "${name}" has a data descriptor that does not match its size`, { expected: `${size} bytes (from data.pkl)`, received: `${u32(d, o + 8)}` });
}

/**
 * Reads a record of unknown size: up to the first "PK\x07\x08" followed by the CRC-32 of the bytes before
 * it and their count (twice). Returns the payload and its CRC; bytes read past the descriptor go back.
 */
async function scanToDescriptor(q: ByteQueue, name: string): Promise<{ data: Uint8Array; crc: number }> {
  let acc = new Uint8Array(4096);
  let len = 0;
  let crc = 0;
  let crcAt = 0;
  for (let p = 0; ;) {
    // Candidate descriptor at p needs 16 bytes (4-byte sizes) or 24 (ZIP64).
    while (len < p + 24 && !q.done) {
      await q.fill(1);
      if (q.buffered === 0) break;
      const chunk = q.take(Math.min(q.buffered, 1 << 16));
      if (len + chunk.byteLength > acc.byteLength) {
        if (len + chunk.byteLength > MAX_SCANNED_RECORD_BYTES + 24) {
          throw new ModelFormatError(`torch zip entry "${name}" has no data descriptor within ${MAX_SCANNED_RECORD_BYTES} bytes`, { expected: 'a small record (data.pkl, byteorder, version)', received: `> ${MAX_SCANNED_RECORD_BYTES} bytes` });
        }
        const grown = new Uint8Array(Math.max(acc.byteLength * 2, len + chunk.byteLength));
        grown.set(acc.subarray(0, len));
        acc = grown;
      }
      acc.set(chunk, len);
      len += chunk.byteLength;
    }
    if (p + 16 > len) throw new ModelFormatError(`torch zip stream ended inside entry "${name}" (truncated download?)`, { expected: 'a data descriptor', received: `${len} bytes` });
    if (acc[p] === 0x50 && acc[p + 1] === 0x4b && acc[p + 2] === 0x07 && acc[p + 3] === 0x08) {
      crc = crc32Update(crc, acc.subarray(crcAt, p));
      crcAt = p;
      if (u32(acc, p + 4) === crc) {
        let dlen = 0;
        if (u32(acc, p + 8) === p && u32(acc, p + 12) === p) dlen = 16;
        else if (p + 24 <= len && u64(acc, p + 8) === p && u64(acc, p + 16) === p) dlen = 24;
        if (dlen) {
          q.unread(acc.slice(p + dlen, len));
          return { data: acc.slice(0, p), crc };
        }
      }
    }
    p++;
  }
}
