/** The soak scenario (e2e/soak.spec.ts), shared by the page and the spec's Node-side reference. */
const WORDS = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'Быстрая', 'лиса', '狐狸', 'renard', 'Fuchs', 'zorro'];

/** Deterministic LCG so the page and the spec draw the same calls. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export interface SoakCall {
  index: number;
  texts: string[];
  layers: number;
  dims: number;
  /** Abort after this many ms (undefined: never). */
  abortAfterMs?: number;
}

export const SOAK_CALLS = 500;
export const RELOAD_AT = [90, 240, 390];
export const KILL_AT = [160, 320];

export function soakCalls(seed = 7, n = SOAK_CALLS): SoakCall[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, index) => {
    const texts = Array.from({ length: 1 + Math.floor(r() * 3) }, () => Array.from({ length: 1 + Math.floor(r() ** 2 * 120) }, () => WORDS[Math.floor(r() * WORDS.length)]).join(' '));
    const layers = 1 + Math.floor(r() * 3);
    const dims = [8, 16, 40][Math.floor(r() * 3)];
    const abortAfterMs = r() < 0.1 ? Math.floor(r() * 40) : undefined;
    return { index, texts, layers, dims, abortAfterMs };
  });
}
