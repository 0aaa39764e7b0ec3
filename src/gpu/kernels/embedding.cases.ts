import type { WeightDType } from '../kernel.ts';
import type { EncoderConfig } from '../../model/config.ts';
import { positionIds } from '../../reference/encoder.ts';
import { embeddingProgram } from './embedding.ts';
import { embeddingRef } from './embedding.ref.ts';
import { uploadWeight } from './testing.ts';
import { seeded, type KernelCase } from './testing.ts';

const V = 1000;
const PAD = 1; // XLM-R pad_token_id = padding_idx

interface EmbShape {
  family: 'bert' | 'xlm-roberta' | 'm3bert';
  B: number;
  T: number;
  H: number;
  /** Real tokens per sequence (right padding with PAD). */
  lengths: number[];
  /** Flat indexes of real tokens that are a literal PAD id inside the text (position padding_idx, as upstream). */
  literalPad?: number[];
}

// M = B·T rows: 1, 7, 130, 37, 7, 24; positions: BERT/m3BERT 0..T−1, XLM-R padding_idx + cumsum(ids != PAD)
// (so the longest row reaches the last row P − 1 of the position table, and a literal PAD reads row PAD).
const shapes: EmbShape[] = [
  { family: 'bert', B: 1, T: 1, H: 13, lengths: [1] },
  { family: 'bert', B: 1, T: 7, H: 40, lengths: [7] },
  { family: 'xlm-roberta', B: 2, T: 65, H: 48, lengths: [65, 20] },
  { family: 'm3bert', B: 1, T: 37, H: 387, lengths: [37] },
  { family: 'm3bert', B: 1, T: 7, H: 1024, lengths: [7] },
  { family: 'xlm-roberta', B: 2, T: 12, H: 20, lengths: [12, 9], literalPad: [3, 4, 12 + 5] },
];

export const embeddingCases: KernelCase[] = shapes.flatMap((s) =>
  (['f32', 'f16x2'] as WeightDType[]).map((wDtype) => {
    const tokenType = s.family !== 'm3bert';
    return {
      name: `embedding/${wDtype}/${tokenType ? 'type' : 'notype'} ${s.family} ${s.B}x${s.T}x${s.H}${s.literalPad ? ' literal <pad>' : ''}`,
      async run(rt) {
        const { B, T, H } = s;
        const M = B * T;
        const seed = M * 7 + H;
        // Token ids: random, with the first and last vocabulary rows always present; padding = PAD.
        const r = seeded(M, seed);
        const inputIds = new Int32Array(M);
        const attentionMask = new Uint8Array(M);
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < T; t++) {
            const i = b * T + t;
            const real = t < s.lengths[b];
            attentionMask[i] = real ? 1 : 0;
            inputIds[i] = real ? Math.floor(((r[i] + 1) / 2) * V) : PAD;
          }
        }
        inputIds[0] = 0;
        inputIds[s.lengths[0] - 1] = V - 1;
        for (const i of s.literalPad ?? []) inputIds[i] = PAD;
        const cfg = { family: s.family, pad_token_id: PAD } as EncoderConfig;
        const pos = positionIds(cfg, { inputIds, attentionMask, B, T });
        if (s.literalPad?.some((i) => pos[i] !== PAD)) throw new Error('a literal <pad> must get position padding_idx');
        const P = s.family === 'xlm-roberta' ? T + PAD + 1 : T;
        const word = uploadWeight(rt, seeded(V * H, seed + 1, -1, 1), wDtype);
        const posW = uploadWeight(rt, seeded(P * H, seed + 2, -0.5, 0.5), wDtype);
        const typeW = tokenType ? uploadWeight(rt, seeded(2 * H, seed + 3, -0.25, 0.25), wDtype) : null;
        const idsB = rt.upload(new Uint32Array(inputIds));
        const posB = rt.upload(new Uint32Array(pos));
        const yb = rt.createBuffer(M * H * 4);
        const bufs = [idsB, posB, word.buf, posW.buf, ...(typeW ? [typeW.buf] : []), yb];
        await rt.run(embeddingProgram({ M, H, wordRows: V }, { wDtype, tokenType }), bufs);
        const got = await rt.readF32(yb, M * H);
        for (const b of bufs) b.destroy();
        // Exact: a gather plus correctly rounded f32 adds in the reference's order.
        return { got, want: embeddingRef(inputIds, pos, M, H, word.ref, posW.ref, typeW?.ref ?? null), maxAbs: 0 };
      },
    } satisfies KernelCase;
  }),
);
