/**
 * The values torch.save's data.pkl builds, as the pickle VM (pickle.ts) represents them: globals, tuples,
 * dicts, storage references and tensor references, plus the storage classes torch names and their dtypes.
 */
import { ModelFormatError } from '../errors.ts';
import type { DType } from './tensor.ts';

/** A `module.name` reference pushed by GLOBAL / STACK_GLOBAL. Only allow-listed names are accepted. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Python tuple (kept distinct from list so shapes and persistent ids are checked for what they are). */
export class PyTuple {
  constructor(readonly items: unknown[]) {}
}

/** A storage named by a persistent id: record `data/<key>` holding `numel` elements of `dtype`. */
export interface StorageRef {
  kind: 'storage';
  key: string;
  storageClass: string;
  /** null: a dtype RawTensor cannot hold (int64 position_ids, f64, ...); such tensors are skipped or rejected. */
  dtype: DType | null;
  /** Bytes per element, known for every storage class so unsupported records can be skipped by size. */
  elementBytes: number;
  numel: number;
}

/** A tensor view onto a storage, as rebuilt by torch._utils._rebuild_tensor_v2. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** Python dict / OrderedDict: insertion-ordered like both. */
export class PyDict {
  readonly map = new Map<unknown, unknown>();
  constructor(readonly ordered: boolean) {}
}

/** Storage classes torch writes in persistent ids, and the dtypes RawTensor can hold. */
export const STORAGE_DTYPES: Record<string, DType | null> = Object.assign(Object.create(null), {
  FloatStorage: 'f32',
  HalfStorage: 'f16',
  BFloat16Storage: 'bf16',
  DoubleStorage: null,
  LongStorage: null,
  IntStorage: null,
  ShortStorage: null,
  CharStorage: null,
  ByteStorage: null,
  BoolStorage: null,
  ComplexFloatStorage: null,
  ComplexDoubleStorage: null,
});

/** Element sizes of every storage class above (torch/storage.py). */
const STORAGE_ELEMENT_BYTES: Record<string, number> = {
  FloatStorage: 4,
  HalfStorage: 2,
  BFloat16Storage: 2,
  DoubleStorage: 8,
  LongStorage: 8,
  IntStorage: 4,
  ShortStorage: 2,
  CharStorage: 1,
  ByteStorage: 1,
  BoolStorage: 1,
  ComplexFloatStorage: 8,
  ComplexDoubleStorage: 16,
};

/**
 * torch/serialization.py persistent_load: ('storage', storage_class, key, location, numel) → a StorageRef.
 * Unsupported (but well-formed) storage classes come back with dtype null.
 */
export function parseStoragePid(pid: unknown): StorageRef {
  const items = pid instanceof PyTuple ? pid.items : [];
  const [tag, cls, key, , count] = items;
  if (items.length !== 5 || tag !== 'storage' || !(cls instanceof PyGlobal) || typeof key !== 'string' || !isIndex(count)) {
    throw new ModelFormatError('torch data.pkl: unexpected persistent id', {
      expected: "('storage', torch.<Type>Storage, key, location, numel)",
      received: pid instanceof PyTuple ? `tuple(${items.map((v) => (typeof v === 'string' ? JSON.stringify(v) : typeof v)).join(', ')})` : pid,
    });
  }
  if (cls.module !== 'torch' || !Object.hasOwn(STORAGE_DTYPES, cls.name)) {
    throw new ModelFormatError('torch data.pkl: persistent id names an unknown storage class', { expected: 'torch.<Type>Storage', received: cls.qualified });
  }
  const elementBytes = STORAGE_ELEMENT_BYTES[cls.name];
  if (!Number.isSafeInteger(count * elementBytes)) throw new ModelFormatError(`torch storage "${key}" is implausibly large`, { expected: '< 2^53 bytes', received: count });
  return { kind: 'storage', key, storageClass: cls.qualified, dtype: STORAGE_DTYPES[cls.name], elementBytes, numel: count };
}

export function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

export function isStorageRef(v: unknown): v is StorageRef {
  return typeof v === 'object' && v !== null && (v as StorageRef).kind === 'storage';
}
