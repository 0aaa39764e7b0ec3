/**
 * ZIP (PKWARE APPNOTE.TXT) as torch.save writes it: just enough to list stored entries and slice their
 * payloads from a file in memory (readZipDirectory, entryPayload), and the constants the streamed reader
 * (torch-stream.ts) needs to walk local headers in file order. See torch.ts for the torch layout.
 */
import { ModelFormatError } from '../errors.ts';

export const SIG_LOCAL = 0x04034b50; // "PK\x03\x04" local file header
export const SIG_CENTRAL = 0x02014b50; // "PK\x01\x02" central directory file header
export const SIG_EOCD = 0x06054b50; // "PK\x05\x06" end of central directory record
const SIG_ZIP64_EOCD = 0x06064b50; // "PK\x06\x06" ZIP64 end of central directory record
const SIG_ZIP64_LOCATOR = 0x07064b50; // "PK\x06\x07" ZIP64 end of central directory locator

/** "PK\x07\x08": the optional signature of a data descriptor (sizes and CRC after a payload, flag bit 3). */
export const SIG_DATA_DESCRIPTOR = 0x08074b50;

export const ZIP_METHODS: Record<number, string> = { 0: 'stored', 8: 'deflate', 9: 'deflate64', 12: 'bzip2', 14: 'lzma', 93: 'zstd' };

export interface ZipEntry {
  name: string;
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ModelFormatError(`torch zip: ${what} does not fit in a JS number`, { expected: '< 2^53', received: v });
  }
  return Number(v);
}

export function need(bytes: Uint8Array, at: number, len: number, what: string): void {
  if (at < 0 || at + len > bytes.byteLength) {
    throw new ModelFormatError(`torch zip: truncated ${what}`, {
      expected: `${len} bytes at offset ${at}`,
      received: `a file of ${bytes.byteLength} bytes`,
    });
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new ModelFormatError(`${what} is not valid UTF-8`, { received: bytes, cause });
  }
}

/** Read the central directory. Handles ZIP64 end records and ZIP64 extra fields (torch writes both). */
export function readZipDirectory(bytes: Uint8Array): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The end-of-central-directory record is 22 bytes plus a comment of up to 65535 bytes: scan back for it.
  let eocd = -1;
  for (let at = bytes.byteLength - 22; at >= 0 && at >= bytes.byteLength - 22 - 0xffff; at--) {
    if (view.getUint32(at, true) === SIG_EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) {
    const legacyPickle = bytes.byteLength >= 2 && bytes[0] === 0x80 && bytes[1] <= 5;
    throw new ModelFormatError(
      legacyPickle ? 'torch file uses the legacy (pre-1.6, non-zip) torch.save format, which is not supported; re-save it with a current torch' : 'not a torch zip archive: no ZIP end-of-central-directory record (file truncated or not a .pt/.pth zip)',
      { expected: 'a ZIP archive ending in PK\\x05\\x06', received: `${bytes.byteLength} bytes starting ${hexPrefix(bytes)}` },
    );
  }
  let count = view.getUint16(eocd + 10, true);
  let cdSize = view.getUint32(eocd + 12, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  // ZIP64: a locator sits immediately before the classic record and points at the ZIP64 record.
  if (eocd >= 20 && view.getUint32(eocd - 20, true) === SIG_ZIP64_LOCATOR) {
    const z64 = u64(view, eocd - 20 + 8, 'ZIP64 end record offset');
    need(bytes, z64, 56, 'ZIP64 end-of-central-directory record');
    if (view.getUint32(z64, true) !== SIG_ZIP64_EOCD) {
      throw new ModelFormatError('torch zip: bad ZIP64 end-of-central-directory record', {
        expected: 'signature PK\\x06\\x06',
        received: `0x${view.getUint32(z64, true).toString(16)} at offset ${z64}`,
      });
    }
    count = u64(view, z64 + 32, 'entry count');
    cdSize = u64(view, z64 + 40, 'central directory size');
    cdOffset = u64(view, z64 + 48, 'central directory offset');
  }
  need(bytes, cdOffset, cdSize, 'central directory');

  const entries: ZipEntry[] = [];
  let at = cdOffset;
  for (let i = 0; i < count; i++) {
    need(bytes, at, 46, 'central directory entry');
    if (view.getUint32(at, true) !== SIG_CENTRAL) {
      throw new ModelFormatError('torch zip: bad central directory entry', {
        expected: 'signature PK\\x01\\x02',
        received: `0x${view.getUint32(at, true).toString(16)} at offset ${at}`,
      });
    }
    const method = view.getUint16(at + 10, true);
    const crc32 = view.getUint32(at + 16, true);
    let compressedSize = view.getUint32(at + 20, true);
    let size = view.getUint32(at + 24, true);
    const nameLen = view.getUint16(at + 28, true);
    const extraLen = view.getUint16(at + 30, true);
    const commentLen = view.getUint16(at + 32, true);
    let localHeaderOffset = view.getUint32(at + 42, true);
    need(bytes, at + 46, nameLen + extraLen + commentLen, 'central directory entry name');
    const name = decodeUtf8(bytes.subarray(at + 46, at + 46 + nameLen), 'zip entry name');
    // ZIP64 extended information extra field (id 0x0001): 8-byte values for each 32-bit field set to 0xFFFFFFFF,
    // in the order uncompressed size, compressed size, local header offset.
    const extraEnd = at + 46 + nameLen + extraLen;
    for (let x = at + 46 + nameLen; x + 4 <= extraEnd;) {
      const id = view.getUint16(x, true);
      const len = view.getUint16(x + 2, true);
      if (x + 4 + len > extraEnd) throw new ModelFormatError('torch zip: an extra field runs past its entry', { expected: `<= ${extraEnd - x - 4} bytes`, received: len });
      if (id === 0x0001) {
        let p = x + 4;
        const field = (what: string): number => {
          if (p + 8 > x + 4 + len) throw new ModelFormatError(`torch zip: ZIP64 extra field too short for the ${what}`, { expected: `>= ${p + 8 - x - 4} bytes`, received: len });
          const v = u64(view, p, what);
          p += 8;
          return v;
        };
        if (size === 0xffffffff) size = field('entry size');
        if (compressedSize === 0xffffffff) compressedSize = field('entry size');
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = field('entry offset');
      }
      x += 4 + len;
    }
    entries.push({ name, method, crc32, compressedSize, size, localHeaderOffset });
    at += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** CRC-32 (ISO-HDLC, as in ZIP), table-driven. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(data: Uint8Array): number {
  return crc32Update(0, data);
}

/** Continues a CRC-32 over more bytes: crc32Update(crc32(a), b) === crc32(a ++ b). */
export function crc32Update(crc: number, data: Uint8Array): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The payload of a stored entry, located via its local header (whose extra field carries torch's padding). */
export function entryPayload(bytes: Uint8Array, e: ZipEntry): Uint8Array {
  if (e.method !== 0) {
    throw new ModelFormatError(`torch zip entry "${e.name}" is compressed; only stored (uncompressed) entries are supported`, {
      expected: 'compression method 0 (stored)',
      received: `method ${e.method} (${ZIP_METHODS[e.method] ?? 'unknown'})`,
    });
  }
  if (e.compressedSize !== e.size) {
    throw new ModelFormatError(`torch zip entry "${e.name}" is stored but its sizes differ`, {
      expected: `compressed size ${e.size}`,
      received: e.compressedSize,
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  need(bytes, e.localHeaderOffset, 30, `local header of "${e.name}"`);
  if (view.getUint32(e.localHeaderOffset, true) !== SIG_LOCAL) {
    throw new ModelFormatError(`torch zip: bad local header for "${e.name}"`, {
      expected: 'signature PK\\x03\\x04',
      received: `0x${view.getUint32(e.localHeaderOffset, true).toString(16)} at offset ${e.localHeaderOffset}`,
    });
  }
  const start = e.localHeaderOffset + 30 + view.getUint16(e.localHeaderOffset + 26, true) + view.getUint16(e.localHeaderOffset + 28, true);
  need(bytes, start, e.size, `payload of "${e.name}"`);
  const payload = bytes.subarray(start, start + e.size);
  const crc = crc32(payload);
  if (crc !== e.crc32) {
    throw new ModelFormatError(`torch zip entry "${e.name}" fails its CRC-32 check (file corrupted)`, {
      expected: `0x${e.crc32.toString(16).padStart(8, '0')}`,
      received: `0x${crc.toString(16).padStart(8, '0')}`,
    });
  }
  return payload;
}

export function hexPrefix(bytes: Uint8Array): string {
  return Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
}
