/**
 * CPU reference of embedding.ts: y[m, :] = word[ids[m], :] + pos[posIds[m], :] (+ type[0, :]).
 * The same gather as the reference encoder's embed() (src/reference/encoder.ts) before its norm, which
 * embed() does not expose separately; position ids come from positionIds() there. Each add is rounded
 * to f32 in the kernel's order ((word + pos) + type), so the GPU must match exactly.
 * word: (V, H), pos: (P, H), type: (TV, H) | null, as the GPU sees them (f16-rounded for f16 storage).
 */
export function embeddingRef(ids: ArrayLike<number>, posIds: ArrayLike<number>, M: number, H: number, word: Float32Array, pos: Float32Array, type: Float32Array | null): Float32Array {
  const y = new Float32Array(M * H);
  for (let m = 0; m < M; m++) {
    const wo = ids[m] * H;
    const po = posIds[m] * H;
    for (let c = 0; c < H; c++) {
      const wp = Math.fround(word[wo + c] + pos[po + c]);
      y[m * H + c] = type ? wp + type[c] : wp;
    }
  }
  return y;
}
