import { InvalidInputError } from '../errors.ts';

/**
 * BGE-M3's MCLS for long documents (Chen et al. 2024 §3.3): a CLS token before every `every` content
 * tokens, so each CLS summarises its neighbourhood; the dense embedding is the mean of all CLS states
 * (mcls_pool.ts). `seq` is a templated sequence [CLS] content… [SEP]; the result keeps the template
 * and cuts content so the whole stays within `maxTokens`.
 */
export function insertMcls(seq: Int32Array, every: number, maxTokens: number): { ids: Int32Array; cut: boolean } {
  const cls = seq[0];
  const content = seq.subarray(1, seq.length - 1);
  const sep = seq[seq.length - 1];
  // n content tokens need n + ceil(n / every) (one CLS per chunk, the first being the original) + 1 (SEP).
  let n = content.length;
  while (n > 0 && n + Math.ceil(n / every) + 1 > maxTokens) n--;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i % every === 0) out.push(cls);
    out.push(content[i]);
  }
  if (n === 0) out.push(cls);
  out.push(sep);
  return { ids: Int32Array.from(out), cut: n < content.length };
}

/**
 * The CLS interval, 1..maxTokens: an interval of maxTokens or more inserts no CLS beyond the first, so
 * a larger one (`mcls: 1e9`) can only be a mistake.
 */
export function validateMcls(every: unknown, maxTokens: number): number | undefined {
  if (every === undefined) return undefined;
  if (typeof every !== 'number' || !Number.isInteger(every) || every < 1 || every > maxTokens) {
    throw new InvalidInputError('option "mcls" must be the CLS interval in tokens', { expected: `an integer in 1..${maxTokens} (the model's maximum tokens), e.g. 256`, received: every });
  }
  return every;
}
