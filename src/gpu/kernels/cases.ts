import { l2normCases } from './l2norm.cases.ts';
import { attentionCases } from './attention.cases.ts';
import { layernormCases } from './layernorm.cases.ts';
import { rmsnormCases } from './rmsnorm.cases.ts';
import { embeddingCases } from './embedding.cases.ts';
import { poolingCases } from './pooling.cases.ts';
import { matmulCases } from './matmul.cases.ts';
import { swigluCases } from './swiglu.cases.ts';
import { gatherAddCases } from './gather_add.cases.ts';
import { mclsPoolCases } from './mcls_pool.cases.ts';
import { matmulQ8Cases } from './matmul_q8.cases.ts';
import { matmulQ4Cases } from './matmul_q4.cases.ts';
import { embeddingQCases } from './embedding_q.cases.ts';
import type { KernelCase } from './testing.ts';

/** Every kernel's parity cases: one line per kernel file. */
export const ALL_CASES: KernelCase[] = [
  ...l2normCases,
  ...attentionCases,
  ...layernormCases,
  ...rmsnormCases,
  ...embeddingCases,
  ...poolingCases,
  ...matmulCases,
  ...swigluCases,
  ...gatherAddCases,
  ...mclsPoolCases,
  ...matmulQ8Cases,
  ...matmulQ4Cases,
  ...embeddingQCases,
];
