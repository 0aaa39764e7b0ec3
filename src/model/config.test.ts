import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UnsupportedModelError, InvalidInputError } from '../errors.ts';
import { SHARED_DATA, sharedDataAvailable } from '../../tools/fixtures/paths.ts';
import { parseConfig, parsePooling } from './config.ts';

const bert = { model_type: 'bert', vocab_size: 30522, hidden_size: 384, num_hidden_layers: 6, num_attention_heads: 12, intermediate_size: 1536, max_position_embeddings: 512, hidden_act: 'gelu', layer_norm_eps: 1e-12, type_vocab_size: 2, pad_token_id: 0 };

describe('parseConfig', () => {
  it('reads a BERT config with HF keys verbatim', () => {
    const c = parseConfig(bert);
    expect(c).toMatchObject({ family: 'bert', hidden_size: 384, num_hidden_layers: 6, norm_eps: 1e-12, position_offset: 0, max_tokens: 512, hidden_act: 'gelu', type_vocab_size: 2 });
    expect(c.raw).toBe(bert);
  });

  it('gives XLM-R positions an offset of padding_idx + 1', () => {
    const c = parseConfig({ ...bert, model_type: 'xlm-roberta', pad_token_id: 1, max_position_embeddings: 8194, type_vocab_size: 1 });
    expect(c.family).toBe('xlm-roberta');
    expect(c.position_offset).toBe(2);
    expect(c.max_tokens).toBe(8192);
  });

  it('recognises m3BERT as a bidirectional llama with its Matryoshka grid', () => {
    const c = parseConfig({
      model_type: 'llama',
      bi_attn: true,
      vocab_size: 250002,
      hidden_size: 768,
      num_hidden_layers: 12,
      num_attention_heads: 12,
      num_key_value_heads: 12,
      intermediate_size: 3072,
      max_position_embeddings: 512,
      rms_norm_eps: 1e-5,
      hidden_act: 'silu',
      mrl_dims: [768, 32, 64, 128],
      mrl_layers: [4, 8, 12],
    });
    expect(c).toMatchObject({ family: 'm3bert', norm_eps: 1e-5, hidden_act: 'silu', type_vocab_size: 0, mrl_layers: [4, 8, 12], mrl_dims: [32, 64, 128, 768] });
  });

  it('accepts m3BERT as its training code saves it: model_type "custom_llama", bi_attn left at its default', () => {
    const c = parseConfig({ model_type: 'custom_llama', vocab_size: 16002, hidden_size: 256, num_hidden_layers: 6, num_attention_heads: 4, intermediate_size: 1024, max_position_embeddings: 512, rms_norm_eps: 1e-5, pad_token_id: 1, mrl_layers: [2, 4, 6] });
    expect(c).toMatchObject({ family: 'm3bert', model_type: 'custom_llama', norm_eps: 1e-5, hidden_act: 'silu', type_vocab_size: 0, position_offset: 0, max_tokens: 512, mrl_layers: [2, 4, 6] });
  });

  it('refuses configs the engine would run wrongly: no blocks, or an m3BERT MLP with bias', () => {
    expect(() => parseConfig({ ...bert, num_hidden_layers: 0 })).toThrow(UnsupportedModelError);
    expect(() => parseConfig({ ...bert, num_hidden_layers: 0 })).toThrow(/no transformer blocks; expected num_hidden_layers >= 1; received 0/);
    const m3 = { model_type: 'custom_llama', vocab_size: 100, hidden_size: 8, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 16, max_position_embeddings: 32 };
    expect(() => parseConfig({ ...m3, mlp_bias: true })).toThrow(UnsupportedModelError);
    expect(() => parseConfig({ ...m3, mlp_bias: true })).toThrow(/MLP with bias/);
    expect(parseConfig({ ...m3, mlp_bias: false }).family).toBe('m3bert');
  });

  it('rejects unknown model types with a typed error naming the supported ones', () => {
    expect(() => parseConfig({ ...bert, model_type: 'gpt2' })).toThrow(UnsupportedModelError);
    expect(() => parseConfig({ ...bert, model_type: 'gpt2' })).toThrow(/expected one of bert, xlm-roberta, .*m3bert; received "gpt2"/);
    expect(() => parseConfig({ ...bert, model_type: 'llama' })).toThrow(/causal decoder/);
  });

  it('rejects bad shapes and non-objects', () => {
    expect(() => parseConfig({ ...bert, num_attention_heads: 5 })).toThrow(/divisible/);
    expect(() => parseConfig({ ...bert, hidden_size: -1 })).toThrow(UnsupportedModelError);
    expect(() => parseConfig('config')).toThrow(InvalidInputError);
    expect(() => parseConfig({ ...bert, hidden_act: 'mish' })).toThrow(/hidden_act/);
  });
});

describe('parsePooling', () => {
  it('reads classic sentence-transformers pooling flags', () => {
    const modules = [{ type: 'sentence_transformers.models.Transformer' }, { type: 'sentence_transformers.models.Pooling', path: '1_Pooling' }, { type: 'sentence_transformers.models.Normalize' }];
    expect(parsePooling(modules, { pooling_mode_cls_token: false, pooling_mode_mean_tokens: true })).toEqual({ pooling: 'mean', normalize: true, layerNormBeforeTruncate: false });
    expect(parsePooling(modules.slice(0, 2), { pooling_mode_cls_token: true, pooling_mode_mean_tokens: false })).toEqual({ pooling: 'cls', normalize: false, layerNormBeforeTruncate: false });
  });
  it('rejects pooling configs we do not run (several modes concatenated)', () => {
    expect(() => parsePooling([], { pooling_mode_mean_tokens: true, pooling_mode_max_tokens: true })).toThrow(UnsupportedModelError);
    expect(parsePooling([], { pooling_mode_max_tokens: true }).pooling).toBe('max');
  });
  it('defaults to normalised mean pooling without modules.json', () => {
    expect(parsePooling(null, null)).toEqual({ pooling: 'mean', normalize: true, layerNormBeforeTruncate: false });
  });
  it('pools a BGE-M3 layout without modules.json by CLS, as FlagEmbedding does; modules.json still wins when present', () => {
    expect(parsePooling(null, null, { bgeM3Heads: true })).toEqual({ pooling: 'cls', normalize: true, layerNormBeforeTruncate: false });
    const modules = [{ type: 'sentence_transformers.models.Transformer' }, { type: 'sentence_transformers.models.Pooling', path: '1_Pooling' }];
    expect(parsePooling(modules, { pooling_mode_mean_tokens: true }, { bgeM3Heads: true }).pooling).toBe('mean');
  });
});

describe.skipIf(!sharedDataAvailable())('real bge-m3 metadata from ../shared/data', () => {
  const dir = resolve(SHARED_DATA, 'heads/bge-m3');
  const read = (f: string) => JSON.parse(readFileSync(resolve(dir, f), 'utf8'));
  it('parses config.json, modules.json and the newer pooling_mode format', () => {
    const c = parseConfig(read('config.json'));
    expect(c).toMatchObject({ family: 'xlm-roberta', hidden_size: 1024, num_hidden_layers: 24, num_attention_heads: 16, intermediate_size: 4096, vocab_size: 250002, max_tokens: 8192, norm_eps: 1e-5 });
    expect(parsePooling(read('modules.json'), read('1_Pooling/config.json'))).toEqual({ pooling: 'cls', normalize: true, layerNormBeforeTruncate: false });
  });
});
if (!sharedDataAvailable()) console.warn(`skipping real bge-m3 metadata tests: ${SHARED_DATA} is absent`);
