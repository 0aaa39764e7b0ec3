import type { EncoderConfig } from '../../model/config.ts';
import { quantize, sliceRows, type QuantBits } from '../../model/quant.ts';
import { positionIds } from '../../reference/encoder.ts';
import { quantBindingData } from '../quant-wgsl.ts';
import { embeddingQProgram, gatherAddQProgram } from './embedding_q.ts';
import { embeddingQRef, gatherAddQRef } from './embedding_q.ref.ts';
import { seeded, uploadWeight, type KernelCase } from './testing.ts';

const V = 1000;
const PAD = 1;

// Odd hidden sizes (ragged code words and ragged q4 blocks: 13, 20, 387), H = 1024, XLM-R positions with a
// literal <pad>, and a table split in two row chunks (the first read by embedding_q, the second added by gather_add_q).
const shapes: { family: 'bert' | 'xlm-roberta' | 'm3bert'; B: number; T: number; H: number; lengths: number[]; literalPad?: number[]; split?: number }[] = [
  { family: 'bert', B: 1, T: 1, H: 13, lengths: [1] },
  { family: 'xlm-roberta', B: 2, T: 12, H: 20, lengths: [12, 9], literalPad: [3, 4, 17] },
  { family: 'm3bert', B: 1, T: 37, H: 387, lengths: [37] },
  { family: 'm3bert', B: 1, T: 7, H: 1024, lengths: [7] },
  { family: 'bert', B: 2, T: 33, H: 52, lengths: [33, 30], split: 611 },
];

export const embeddingQCases: KernelCase[] = shapes.flatMap((s) =>
  ([8, 4] as QuantBits[]).map((bits) => {
    const tokenType = s.family !== 'm3bert';
    return {
      name: `embedding_q/q${bits}/${tokenType ? 'type' : 'notype'} ${s.family} ${s.B}x${s.T}x${s.H}${s.literalPad ? ' literal <pad>' : ''}${s.split ? ` split at row ${s.split}` : ''}`,
      async run(rt) {
        const { B, T, H } = s;
        const M = B * T;
        const seed = M * 11 + H + bits;
        const r = seeded(M, seed);
        const inputIds = new Int32Array(M);
        const attentionMask = new Uint8Array(M);
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < T; t++) {
            const real = t < s.lengths[b];
            attentionMask[b * T + t] = real ? 1 : 0;
            inputIds[b * T + t] = real ? Math.floor(((r[b * T + t] + 1) / 2) * V) : PAD;
          }
        }
        inputIds[0] = 0;
        inputIds[s.lengths[0] - 1] = V - 1;
        for (const i of s.literalPad ?? []) inputIds[i] = PAD;
        const pos = positionIds({ family: s.family, pad_token_id: PAD } as EncoderConfig, { inputIds, attentionMask, B, T });
        const P = s.family === 'xlm-roberta' ? T + PAD + 1 : T;
        const word = quantize(seeded(V * H, seed + 1, -1, 1), V, H, bits);
        const posW = uploadWeight(rt, seeded(P * H, seed + 2, -0.5, 0.5), 'f32');
        const typeW = tokenType ? uploadWeight(rt, seeded(2 * H, seed + 3, -0.25, 0.25), 'f32') : null;
        const first = s.split ? sliceRows(word, 0, s.split) : word;
        const idsB = rt.upload(new Uint32Array(inputIds));
        const yb = rt.createBuffer(M * H * 4);
        const wordB = quantBindingData(first).map((a) => rt.upload(a));
        const bufs = [idsB, rt.upload(new Uint32Array(pos)), ...wordB, posW.buf, ...(typeW ? [typeW.buf] : []), yb];
        await rt.run(embeddingQProgram({ M, H, wordRows: first.rows }, { bits, pDtype: 'f32', tokenType }), bufs);
        // Split: chunk 0 with pos/type, then chunk 1 added, in the kernels' order.
        const want = embeddingQRef(inputIds, pos, M, H, first, posW.ref, typeW?.ref ?? null);
        if (s.split) {
          const rest = sliceRows(word, s.split, V - s.split);
          const restB = quantBindingData(rest).map((a) => rt.upload(a));
          bufs.push(...restB);
          if (!inputIds.some((id) => id >= s.split!)) throw new Error('the split case must gather rows of the second chunk');
          await rt.run(gatherAddQProgram({ M, H, row0: s.split, rows: rest.rows }, { bits }), [idsB, ...restB, yb]);
          gatherAddQRef(inputIds, want, H, rest, s.split);
        }
        const got = await rt.readF32(yb, M * H);
        for (const b of bufs) b.destroy();
        return { got, want, maxAbs: 0 };
      },
    } satisfies KernelCase;
  }),
);
