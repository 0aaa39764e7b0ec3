/**
 * Reader for PyTorch `torch.save` state_dict files (the bge-m3 heads `colbert_linear.pt` and
 * `sparse_linear.pt`, whole checkpoints `pytorch_model.bin`), with no dependency. Split by job: zip.ts
 * (container), pickle.ts (the allow-listed pickle VM), this file (state_dict assembly from a file in
 * memory), torch-stream.ts (the same from a download, storages handed on as they arrive).
 *
 * Layout (PyTorch ≥ 1.6 "zipfile" serialization: torch/serialization.py `_save` / `_load`, written by
 * caffe2/serialize/inline_container.cc `PyTorchStreamWriter` on top of miniz):
 *
 *   <archive>/data.pkl              pickle (protocol 2 by default) of the saved object
 *   <archive>/byteorder             "little" | "big" (torch ≥ 2.0; absent means little-endian)
 *   <archive>/data/<key>            raw bytes of one storage, one record per storage key
 *   <archive>/version               file-format version, e.g. "3\n"
 *   <archive>/.data/serialization_id  (torch ≥ 2.1; ignored)
 *
 * Every record is a *stored* (method 0) ZIP entry whose payload starts on a 64-byte boundary: torch pads
 * the local header with an extra field tagged "FB" filled with 'Z'. Local headers carry zero sizes and
 * CRC (general-purpose flag bit 3, "data descriptor follows"), so sizes must be read from the central
 * directory. torch always ends the archive with ZIP64 end records plus a classic end record.
 *
 * Inside data.pkl a state_dict is `collections.OrderedDict` whose values are tensors pickled as
 *   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
 * where `storage` is a *persistent id* (BINPERSID) resolved by torch's unpickler, of the form
 *   ('storage', torch.HalfStorage | torch.FloatStorage | torch.BFloat16Storage | ..., key, location, numel)
 * and names the record `<archive>/data/<key>`. Module `state_dict()`s additionally carry a `_metadata`
 * attribute, pickled as a BUILD on the OrderedDict; nn.Parameter values go through
 * torch._utils._rebuild_parameter(data, requires_grad, backward_hooks).
 *
 * Limits (a hostile file must not amplify): tensors are views of their storage, never copies, and the
 * bytes of all tensors returned may not exceed AMPLIFICATION_LIMIT × the file's bytes (+ a small constant),
 * so a pickle that names one storage under 400 keys is a ModelFormatError, not 800 MB of uploads. Any
 * failure of a crafted file, whatever its kind, surfaces as a ModelFormatError.
 */
import { M3Error, ModelFormatError } from '../errors.ts';
import { Unpickler } from './pickle.ts';
import { parseStoragePid, PyDict, TensorRef, type StorageRef } from './pickle-values.ts';
import { numel, type RawTensor } from './tensor.ts';
import { entryPayload, readZipDirectory } from './zip.ts';

/** Tensor bytes may total at most this many times the file's bytes (tied weights share a storage: 2× is legitimate). */
export const AMPLIFICATION_LIMIT = 4;
/** ...plus this much, so tiny files with a few shared views stay readable. */
export const AMPLIFICATION_SLACK_BYTES = 1 << 20;

/** What data.pkl says: tensors in pickle order, each a view onto a storage. */
export interface StateDictLayout {
  tensors: [string, TensorRef][];
  storages: Map<string, StorageRef>;
}

/** Runs data.pkl through the pickle VM and checks that it is a state_dict of contiguous, in-bounds tensors. */
export function parseStateDictPickle(pkl: Uint8Array): StateDictLayout {
  const storages = new Map<string, StorageRef>();
  const persistentLoad = (pid: unknown): StorageRef => {
    const ref = parseStoragePid(pid);
    const seen = storages.get(ref.key);
    if (seen) {
      if (seen.storageClass !== ref.storageClass || seen.numel !== ref.numel) {
        throw new ModelFormatError(`torch storage "${ref.key}" is described two different ways`, {
          expected: `${seen.storageClass} x ${seen.numel}`,
          received: `${ref.storageClass} x ${ref.numel}`,
        });
      }
      return seen; // one storage, one object: tensors over it share bytes
    }
    storages.set(ref.key, ref);
    return ref;
  };
  const root = new Unpickler(pkl, persistentLoad).run();
  if (!(root instanceof PyDict)) {
    throw new ModelFormatError('torch file does not hold a state_dict', { expected: 'a dict or OrderedDict of tensors', received: root });
  }
  const tensors: [string, TensorRef][] = [];
  for (const [key, value] of root.map) {
    if (typeof key !== 'string') throw new ModelFormatError('state_dict key is not a string', { expected: 'string', received: key });
    if (!(value instanceof TensorRef)) {
      throw new ModelFormatError(`state_dict entry "${key}" is not a tensor`, { expected: 'a tensor', received: value });
    }
    checkView(key, value);
    tensors.push([key, value]);
  }
  return { tensors, storages };
}

/** Contiguity and bounds of a view (c10 TensorImpl::compute_contiguous). */
function checkView(key: string, t: TensorRef): void {
  const n = numel(t.shape);
  if (!Number.isSafeInteger(n)) throw new ModelFormatError(`tensor "${key}" has an implausible shape`, { expected: 'fewer than 2^53 elements', received: `[${t.shape.join(',')}]` });
  // An empty tensor is contiguous whatever its strides, and dims of size 1 may have any stride.
  let expected = 1;
  for (let d = t.shape.length - 1; d >= 0 && n > 0; d--) {
    if (t.shape[d] !== 1 && t.stride[d] !== expected) {
      throw new ModelFormatError(`tensor "${key}" is not contiguous`, {
        expected: `strides for a contiguous [${t.shape.join(',')}] tensor`,
        received: `(${t.stride.join(', ')})`,
      });
    }
    expected *= t.shape[d];
  }
  if (n > 0 && t.offset + n > t.storage.numel) {
    throw new ModelFormatError(`tensor "${key}" runs past the end of its storage`, {
      expected: `offset ${t.offset} + ${n} elements <= ${t.storage.numel}`,
      received: t.offset + n,
    });
  }
}

/** The tensor as a view of its storage's bytes (shared, not copied). The storage's dtype must be one RawTensor holds. */
export function tensorView(t: TensorRef, storage: Uint8Array): RawTensor {
  const { dtype, elementBytes } = t.storage;
  if (dtype === null) throw new ModelFormatError(`tensor with storage ${t.storage.storageClass} cannot be decoded`, { expected: 'torch.FloatStorage, torch.HalfStorage or torch.BFloat16Storage', received: t.storage.storageClass });
  const n = numel(t.shape);
  return { dtype, shape: [...t.shape], data: storage.subarray(t.offset * elementBytes, (t.offset + n) * elementBytes) };
}

/** Counts decoded bytes against the amplification limit; throws past it. */
export class DecodeBudget {
  private used = 0;
  add(key: string, bytes: number, fileBytes: number): void {
    this.used += bytes;
    const limit = AMPLIFICATION_LIMIT * fileBytes + AMPLIFICATION_SLACK_BYTES;
    if (this.used > limit) {
      throw new ModelFormatError(`torch file decodes to more tensor bytes than it could hold (a storage reused under many keys?) at "${key}"`, {
        expected: `at most ${AMPLIFICATION_LIMIT} x ${fileBytes} file bytes + ${AMPLIFICATION_SLACK_BYTES}`,
        received: `${this.used} bytes`,
      });
    }
  }
}

/** Runs `fn`, turning any non-M3Error (a RangeError from a crafted length, ...) into a ModelFormatError. */
export function typedFormatErrors<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof M3Error) throw err;
    throw new ModelFormatError(`${what} is malformed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}

export interface TorchReadOptions {
  /**
   * Tensors of dtypes RawTensor cannot hold (int64 position_ids, f64): false (default) rejects the file,
   * naming the storage class; true skips them and reports each through onSkipped.
   */
  skipUnsupported?: boolean;
  onSkipped?: (name: string, storageClass: string) => void;
}

/**
 * Parse a `torch.save`d state_dict (zip format, stored entries) held in memory into name → tensor.
 * Tensors must be float32, float16 or bfloat16 and contiguous (storage offsets are honoured, and several
 * tensors may share one storage). Returned tensors are views of `bytes` (no copy).
 * Throws ModelFormatError for anything malformed or outside that subset.
 */
export function readTorchStateDict(bytes: Uint8Array, opts: TorchReadOptions = {}): Map<string, RawTensor> {
  return typedFormatErrors('torch file', () => readTorchStateDictUnchecked(bytes, opts));
}

function readTorchStateDictUnchecked(bytes: Uint8Array, opts: TorchReadOptions): Map<string, RawTensor> {
  const entries = readZipDirectory(bytes);
  if (entries.length === 0) {
    throw new ModelFormatError('torch zip archive is empty', { expected: '<archive>/data.pkl', received: 'no entries' });
  }
  // PyTorchStreamReader takes the archive name from the first entry's top-level folder.
  const first = entries[0].name;
  const slash = first.indexOf('/');
  if (slash <= 0) {
    throw new ModelFormatError('torch zip: first entry is not inside an archive folder', { expected: '<archive>/...', received: first });
  }
  const prefix = first.slice(0, slash + 1);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const record = (name: string): Uint8Array | undefined => {
    const e = byName.get(prefix + name);
    return e ? entryPayload(bytes, e) : undefined;
  };

  const pkl = record('data.pkl');
  if (!pkl) {
    throw new ModelFormatError('torch zip has no data.pkl', {
      expected: `${prefix}data.pkl`,
      received: entries
        .slice(0, 8)
        .map((e) => e.name)
        .join(', '),
    });
  }
  checkByteorder(record('byteorder'));
  const layout = parseStateDictPickle(pkl);
  const data = new Map<string, Uint8Array>();
  const storageBytes = (ref: StorageRef): Uint8Array => {
    const seen = data.get(ref.key);
    if (seen) return seen;
    const payload = record(`data/${ref.key}`);
    if (!payload) throw new ModelFormatError('torch zip lacks a storage record', { expected: `${prefix}data/${ref.key}`, received: 'no such entry' });
    checkStorageLength(ref, payload.byteLength);
    data.set(ref.key, payload);
    return payload;
  };
  const budget = new DecodeBudget();
  const out = new Map<string, RawTensor>();
  for (const [key, t] of layout.tensors) {
    const payload = storageBytes(t.storage);
    if (t.storage.dtype === null) {
      if (!opts.skipUnsupported) {
        throw new ModelFormatError(`torch tensor "${key}" with storage ${t.storage.storageClass} is not supported`, {
          expected: 'torch.FloatStorage, torch.HalfStorage or torch.BFloat16Storage',
          received: t.storage.storageClass,
        });
      }
      opts.onSkipped?.(key, t.storage.storageClass);
      continue;
    }
    const tensor = tensorView(t, payload);
    budget.add(key, tensor.data.byteLength, bytes.byteLength);
    out.set(key, tensor);
  }
  return out;
}

/** torch ≥ 2.0 writes "little" or "big"; we read little-endian only. */
export function checkByteorder(record: Uint8Array | undefined): void {
  if (!record) return;
  const order = new TextDecoder().decode(record);
  if (order !== 'little') {
    throw new ModelFormatError('torch file is not little-endian', { expected: '"little" in byteorder', received: order });
  }
}

export function checkStorageLength(ref: StorageRef, byteLength: number): void {
  const want = ref.numel * ref.elementBytes;
  if (byteLength !== want) {
    throw new ModelFormatError(`torch storage "${ref.key}" has the wrong byte length`, {
      expected: `${want} bytes (${ref.numel} x ${ref.storageClass})`,
      received: `${byteLength} bytes`,
    });
  }
}
