import type { Pooling } from '../../model/config.ts';
import { pool } from '../../reference/pooling.ts';

/**
 * CPU reference of pooling.ts: the reference encoder's pool() (sentence-transformers Pooling, every mode),
 * fed the right-padding mask that `lengths` describes.
 * x: (B, T, H), lengths: (B) → (B, H).
 */
export function poolingRef(x: Float32Array, lengths: ArrayLike<number>, B: number, T: number, H: number, mode: Pooling): Float32Array {
  const mask = new Uint8Array(B * T);
  for (let b = 0; b < B; b++) for (let t = 0; t < Math.min(lengths[b], T); t++) mask[b * T + t] = 1;
  return pool(x, mask, B, T, H, mode);
}
