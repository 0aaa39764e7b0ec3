import { describe, expect, it } from 'vitest';
import { positionIds as referencePositionIds } from '../reference/encoder.ts';
import type { EncoderConfig } from '../model/config.ts';
import { positionIds } from './positions.ts';

const xlmr = { family: 'xlm-roberta', pad_token_id: 1 } as EncoderConfig;
// Two rows, T = 6: <s> a <pad> b </s> | <s> c </s> <pad> <pad> <pad> (right padding). Row 0 holds a literal <pad>.
const batch = { inputIds: Int32Array.from([0, 40, 1, 41, 2, 1, 0, 42, 2, 1, 1, 1]), attentionMask: Uint8Array.from([1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0]), B: 2, T: 6 };

describe('position ids', () => {
  it('XLM-R: from input_ids != padding_idx (create_position_ids_from_input_ids), so a literal <pad> gets padding_idx', () => {
    // cumsum([1,1,0,1,1,0]) * mask + 1 = [2,3,1,4,5,1]; the attention mask would have given [2,3,4,5,6,1].
    const want = [2, 3, 1, 4, 5, 1, 2, 3, 4, 1, 1, 1];
    expect([...positionIds(xlmr, batch)]).toEqual(want);
    expect([...referencePositionIds(xlmr, batch)]).toEqual(want);
  });
  it('BERT and m3BERT: 0..T−1 whatever the ids', () => {
    for (const family of ['bert', 'm3bert'] as const) {
      const cfg = { family, pad_token_id: 0 } as EncoderConfig;
      expect([...positionIds(cfg, batch)]).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
      expect([...referencePositionIds(cfg, batch)]).toEqual([0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]);
    }
  });
});
