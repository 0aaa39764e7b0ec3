import { dequantizeRows, type QuantizedMatrix } from '../../model/quant.ts';

/**
 * CPU reference of embedding_q.ts: the word table dequantised exactly as the shader does (quant.ts:
 * f32((code − zero) · scale)), then embedding.ref.ts's gather and f32 adds in its order ((word + pos) + type).
 * word: (word_rows, H) quantised, the table or its first row chunk (ids past it contribute 0, as in the
 * kernel); pos, type as the GPU sees them.
 */
export function embeddingQRef(ids: ArrayLike<number>, posIds: ArrayLike<number>, M: number, H: number, word: QuantizedMatrix, pos: Float32Array, type: Float32Array | null): Float32Array {
  const table = dequantizeRows(word, 0, word.rows);
  const y = new Float32Array(M * H);
  for (let m = 0; m < M; m++) {
    const inChunk = ids[m] < word.rows;
    for (let c = 0; c < H; c++) {
      const wp = Math.fround((inChunk ? table[ids[m] * H + c] : 0) + pos[posIds[m] * H + c]);
      y[m * H + c] = type ? wp + type[c] : wp;
    }
  }
  return y;
}

/** CPU reference of gatherAddQProgram: y[m, :] += deq(table)[ids[m] − row0, :] for ids in [row0, row0 + table.rows). y: (M, H), updated in place. */
export function gatherAddQRef(ids: ArrayLike<number>, y: Float32Array, H: number, table: QuantizedMatrix, row0: number): Float32Array {
  const t = dequantizeRows(table, 0, table.rows);
  for (let m = 0; m < ids.length; m++) {
    const r = ids[m] - row0;
    if (r < 0 || r >= table.rows) continue;
    for (let c = 0; c < H; c++) y[m * H + c] = Math.fround(y[m * H + c] + t[r * H + c]);
  }
  return y;
}
