import type { EncoderConfig } from '../model/config.ts';
import type { EncoderBatch } from '../tokenize/tokenizer.ts';

/**
 * Position ids of a padded batch, (B, T) → (B, T), computed on the CPU and uploaded with the ids
 * (the embedding kernel gathers rows by them, src/gpu/kernels/embedding.ts).
 * - BERT and m3BERT: 0..T−1 (transformers BertEmbeddings' position_ids buffer; m3BERT pos_embeddings[0..T−1]).
 * - RoBERTa / XLM-R: transformers' create_position_ids_from_input_ids, mask = input_ids != padding_idx,
 *   ids = cumsum(mask) · mask + padding_idx. The mask is taken from the ids, as upstream does, not from
 *   the attention mask: a literal `<pad>` inside a text gets padding_idx as its position and the tokens
 *   after it continue the count without it. Every id stays < padding_idx + 1 + T ≤ max_position_embeddings.
 */
export function positionIds(cfg: Pick<EncoderConfig, 'family' | 'pad_token_id'>, batch: Pick<EncoderBatch, 'inputIds' | 'B' | 'T'>): Uint32Array<ArrayBuffer> {
  const { B, T, inputIds } = batch;
  const pos = new Uint32Array(B * T);
  if (cfg.family !== 'xlm-roberta') {
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = t;
    return pos;
  }
  const pad = cfg.pad_token_id;
  for (let b = 0; b < B; b++) {
    let count = 0;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (inputIds[i] === pad) pos[i] = pad;
      else pos[i] = pad + ++count;
    }
  }
  return pos;
}
