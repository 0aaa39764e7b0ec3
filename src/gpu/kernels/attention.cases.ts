import { KERNEL_SCHEDULES, scheduleTag } from '../kernel.ts';
import { attentionProgram } from './attention.ts';
import { attentionRef } from './attention.ref.ts';
import { seeded, type KernelCase } from './testing.ts';

interface Spec {
  B: number;
  T: number;
  H: number;
  heads: number;
  /** Real tokens per sequence (defaults to T for all). */
  lengths?: number[];
  /** Multiply Q and K, to push logits far beyond exp()'s f32 range (≈ 88) and exercise the running max. */
  qScale?: number;
  kScale?: number;
  tag?: string;
}

// Odd sizes throughout; head dims 12, 13, 8, 8, 12, 64, 12, 16, 16, 128, 8. Flash: 32-row query tiles, 16-key
// tiles; rows: 64 query rows per workgroup, 4 keys per softmax step.
const specs: Spec[] = [
  { B: 1, T: 1, H: 48, heads: 4 },
  { B: 2, T: 7, H: 52, heads: 4, lengths: [7, 3] }, // d = 13
  { B: 3, T: 37, H: 40, heads: 5, lengths: [37, 1, 20] }, // length-1 sequence beside a full one
  { B: 2, T: 45, H: 24, heads: 3, lengths: [1, 45], tag: 'len1+full' },
  { B: 1, T: 130, H: 48, heads: 4 },
  { B: 2, T: 200, H: 64, heads: 1, lengths: [200, 77] }, // d = 64
  { B: 1, T: 65, H: 96, heads: 8 }, // d = 12
  { B: 2, T: 33, H: 48, heads: 3, lengths: [33, 19], qScale: 30, kScale: 4, tag: 'large-logits' }, // max logit ≈ 144: exp() overflows f32 without the running max
  { B: 1, T: 1030, H: 32, heads: 2, qScale: 4, tag: 'long' }, // 33 query tiles × 65 key tiles; Q×4 sharpens the softmax
  { B: 2, T: 70, H: 256, heads: 2, lengths: [70, 41] }, // d = 128, the largest head dim (both schedules' register arrays are full)
  { B: 3, T: 9, H: 24, heads: 3, lengths: [0, 9, 50], tag: 'len0+overlong' }, // an empty sequence (all zeros) and a length above T (clamped)
];

// Outputs are convex combinations of V ∈ [−1, 1): f32 rounding of the scores and of the running
// rescaling stays ~1e-6; allow 1e-5. Large logits amplify score rounding (|s| ≈ 144, an f32 ulp there is 1.5e-5): 5e-5.
const TOL = 1e-5;
const TOL_LARGE = 5e-5;

// Both schedules on every spec; 'registers' runs the flash kernel where d % 4 != 0 (d = 13 here), and the
// case name says which kernel ran.
export const attentionCases: KernelCase[] = KERNEL_SCHEDULES.flatMap((schedule) =>
  specs.map((s, idx) => ({
    name: `attention/${schedule === 'registers' && (s.H / s.heads) % 4 === 0 ? 'rows' : 'flash'}${schedule === 'registers' ? ` (${scheduleTag(schedule)})` : ''} B${s.B} T${s.T} H${s.H} heads${s.heads}${s.lengths ? ` len[${s.lengths.join(',')}]` : ''}${s.tag ? ` ${s.tag}` : ''}`,
    async run(rt) {
      const qkv = seeded(s.B * s.T * 3 * s.H, 0xa77e + idx * 7919 + s.T, -1, 1);
      if (s.qScale) {
        for (let r = 0; r < s.B * s.T; r++) for (let c = 0; c < s.H; c++) qkv[r * 3 * s.H + c] *= s.qScale;
      }
      if (s.kScale) {
        for (let r = 0; r < s.B * s.T; r++) for (let c = s.H; c < 2 * s.H; c++) qkv[r * 3 * s.H + c] *= s.kScale;
      }
      const lengths = Uint32Array.from(s.lengths ?? Array.from({ length: s.B }, () => s.T));
      const qb = rt.upload(qkv);
      const lb = rt.upload(lengths);
      const ob = rt.createBuffer(s.B * s.T * s.H * 4);
      try {
        await rt.run(attentionProgram(s, { schedule }), [qb, lb, ob]);
        const got = await rt.readF32(ob, s.B * s.T * s.H);
        return { got, want: attentionRef(qkv, lengths, s.B, s.T, s.H, s.heads), maxAbs: s.kScale ? TOL_LARGE : TOL };
      } finally {
        qb.destroy();
        lb.destroy();
        ob.destroy();
      }
    },
  })),
);
