import { InvalidInputError, UnsupportedModelError } from '../errors.ts';

/**
 * The three encoder families m3web runs. Hugging Face config keys are kept verbatim in `raw`;
 * the fields below are the normalised view the engine needs.
 */
export type Family = 'bert' | 'xlm-roberta' | 'm3bert';

export const SUPPORTED_MODEL_TYPES = ['bert', 'xlm-roberta', 'llama (m3BERT, with "bi_attn": true)', 'custom_llama (m3BERT)', 'm3bert'] as const;

export type Activation = 'gelu' | 'gelu_tanh' | 'relu' | 'silu';

export interface EncoderConfig {
  family: Family;
  model_type: string;
  vocab_size: number;
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  intermediate_size: number;
  max_position_embeddings: number;
  /** 0 when the family has no token-type embedding (m3bert). */
  type_vocab_size: number;
  /** LayerNorm eps (bert, xlm-roberta) or RMSNorm eps (m3bert). */
  norm_eps: number;
  hidden_act: Activation;
  pad_token_id: number;
  /**
   * First position id of a real token. RoBERTa/XLM-R: padding_idx + 1 (= 2), see
   * transformers' create_position_ids_from_input_ids; BERT and m3BERT: 0.
   */
  position_offset: number;
  /** m3BERT's trained exits and Matryoshka prefixes (config keys mrl_layers / mrl_dims), if present. */
  mrl_layers?: number[];
  mrl_dims?: number[];
  /** Usable tokens per sequence (positions minus the offset). */
  max_tokens: number;
  raw: Record<string, unknown>;
}

const ACTIVATIONS: Record<string, Activation> = {
  gelu: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  relu: 'relu',
  silu: 'silu',
  swish: 'silu',
};

function intKey(raw: Record<string, unknown>, key: string, fallback?: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new UnsupportedModelError(`config.json key "${key}" is missing or invalid`, { expected: 'a non-negative integer', received: raw[key] });
  }
  return v;
}

function numKey(raw: Record<string, unknown>, key: string, fallback: number): number {
  const v = raw[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new UnsupportedModelError(`config.json key "${key}" is invalid`, { expected: 'a positive number', received: raw[key] });
  }
  return v;
}

function intList(raw: Record<string, unknown>, key: string): number[] | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x > 0)) {
    throw new UnsupportedModelError(`config.json key "${key}" is invalid`, { expected: 'a list of positive integers', received: v });
  }
  return [...v].sort((a, b) => a - b);
}

function familyOf(raw: Record<string, unknown>): Family {
  const type = raw.model_type;
  if (type === 'bert') return 'bert';
  if (type === 'xlm-roberta' || type === 'roberta') return 'xlm-roberta';
  if (type === 'm3bert') return 'm3bert';
  // m3BERT ships as model_type "llama" with bidirectional attention switched on (XMUDeepLIT/m3bert
  // configs/model_configs/m3bert/config.json); a causal llama is a decoder we do not serve.
  if (type === 'llama' && raw.bi_attn === true) return 'm3bert';
  // What m3BERT's training code saves: CustomLlamaConfig.model_type = "custom_llama"
  // (configuration_custom_llama.py). Its attention classes set is_causal = False whatever bi_attn
  // says (modeling_custom_llama.py, ModifiedLlamaAttention / ModifiedLlamaSdpaAttention), so no flag is needed.
  if (type === 'custom_llama') return 'm3bert';
  throw new UnsupportedModelError('unsupported model_type in config.json', {
    expected: `one of ${SUPPORTED_MODEL_TYPES.join(', ')}`,
    received: type === 'llama' ? 'llama without "bi_attn": true (a causal decoder)' : type,
  });
}

export function parseConfig(json: unknown): EncoderConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new InvalidInputError('config.json must be a JSON object', { expected: 'object', received: json });
  }
  const raw = json as Record<string, unknown>;
  const family = familyOf(raw);
  const hidden_size = intKey(raw, 'hidden_size');
  const num_attention_heads = intKey(raw, 'num_attention_heads');
  if (num_attention_heads === 0 || hidden_size % num_attention_heads !== 0) {
    throw new UnsupportedModelError('hidden_size must be divisible by num_attention_heads', {
      expected: 'hidden_size % num_attention_heads == 0',
      received: `${hidden_size} % ${num_attention_heads}`,
    });
  }
  if (family === 'm3bert') {
    const kv = raw.num_key_value_heads ?? num_attention_heads;
    if (kv !== num_attention_heads) {
      throw new UnsupportedModelError('grouped-query attention is not supported for m3bert', { expected: `num_key_value_heads == ${num_attention_heads}`, received: kv });
    }
    if (raw.attention_bias === true) {
      throw new UnsupportedModelError('m3bert attention with bias is not supported', { expected: 'attention_bias false', received: true });
    }
    // LlamaMLP builds gate/up/down with bias=config.mlp_bias (transformers modeling_llama; upstream's
    // CustomLlamaConfig keeps the key). m3BERT trains without it and the engine runs no MLP bias: refuse
    // rather than load a checkpoint whose bias tensors would be silently ignored.
    if (raw.mlp_bias !== undefined && raw.mlp_bias !== false && raw.mlp_bias !== null) {
      throw new UnsupportedModelError('m3bert MLP with bias is not supported', { expected: 'mlp_bias false or absent', received: raw.mlp_bias });
    }
  }
  const num_hidden_layers = intKey(raw, 'num_hidden_layers');
  if (num_hidden_layers === 0) {
    throw new UnsupportedModelError('config.json has no transformer blocks', { expected: 'num_hidden_layers >= 1', received: 0 });
  }
  const actName = String(raw.hidden_act ?? (family === 'm3bert' ? 'silu' : 'gelu'));
  const hidden_act = ACTIVATIONS[actName];
  if (!hidden_act) {
    throw new UnsupportedModelError('unsupported hidden_act', { expected: Object.keys(ACTIVATIONS).join(', '), received: actName });
  }
  const pad_token_id = intKey(raw, 'pad_token_id', family === 'bert' ? 0 : 1);
  const max_position_embeddings = intKey(raw, 'max_position_embeddings');
  const position_offset = family === 'xlm-roberta' ? pad_token_id + 1 : 0;
  return {
    family,
    model_type: String(raw.model_type),
    vocab_size: intKey(raw, 'vocab_size'),
    hidden_size,
    num_hidden_layers,
    num_attention_heads,
    intermediate_size: intKey(raw, 'intermediate_size'),
    max_position_embeddings,
    type_vocab_size: family === 'm3bert' ? 0 : intKey(raw, 'type_vocab_size', 2),
    norm_eps: family === 'm3bert' ? numKey(raw, 'rms_norm_eps', 1e-6) : numKey(raw, 'layer_norm_eps', 1e-12),
    hidden_act,
    pad_token_id,
    position_offset,
    mrl_layers: intList(raw, 'mrl_layers'),
    mrl_dims: intList(raw, 'mrl_dims'),
    max_tokens: max_position_embeddings - position_offset,
    raw,
  };
}

/**
 * sentence-transformers pooling modes (models/Pooling.py `pooling_mode` strings), one per model: m3web runs
 * exactly one mode (Pooling.py can concatenate several; that is an UnsupportedModelError).
 */
export const POOLING_MODES = ['cls', 'mean', 'max', 'lasttoken', 'weightedmean', 'mean_sqrt_len_tokens'] as const;
export type Pooling = (typeof POOLING_MODES)[number];

// 1_Pooling/config.json boolean keys (verbatim) → mode.
const POOLING_KEYS: Record<string, Pooling> = {
  pooling_mode_cls_token: 'cls',
  pooling_mode_mean_tokens: 'mean',
  pooling_mode_max_tokens: 'max',
  pooling_mode_lasttoken: 'lasttoken',
  pooling_mode_weightedmean_tokens: 'weightedmean',
  pooling_mode_mean_sqrt_len_tokens: 'mean_sqrt_len_tokens',
};

export interface PoolingConfig {
  pooling: Pooling;
  /** A Normalize module follows pooling in modules.json. */
  normalize: boolean;
  /** nomic-style parameter-free layer norm over the pooled vector before truncation. */
  layerNormBeforeTruncate: boolean;
}

/**
 * Reads sentence-transformers' modules.json + 1_Pooling/config.json. Without modules.json we
 * follow sentence-transformers' own fallback for a bare transformer: mean pooling, and we
 * normalise because every caller of an embedding engine compares by cosine — except for a folder
 * with BGE-M3 heads, which FlagEmbedding always pools by CLS.
 */
export function parsePooling(modules: unknown, pooling: unknown, opts: { bgeM3Heads?: boolean } = {}): PoolingConfig {
  // BGE-M3 layout (colbert_linear / sparse_linear heads) without modules.json: FlagEmbedding's M3 embedder
  // pools by CLS whatever the folder says (inference/embedder/encoder_only/m3.py, pooling_method='cls').
  if ((modules === null || modules === undefined) && opts.bgeM3Heads) return { pooling: 'cls', normalize: true, layerNormBeforeTruncate: false };
  if (modules === null || modules === undefined) return { pooling: 'mean', normalize: true, layerNormBeforeTruncate: false };
  if (!Array.isArray(modules)) throw new UnsupportedModelError('modules.json must be a list', { expected: 'array', received: modules });
  const types = modules.map((m) => String((m as { type?: unknown }).type ?? ''));
  const normalize = types.some((t) => t.endsWith('.Normalize'));
  const layerNormBeforeTruncate = types.some((t) => t.endsWith('.LayerNorm'));
  let mode: Pooling = 'mean';
  if (pooling && typeof pooling === 'object') {
    const p = pooling as Record<string, unknown>;
    const modeKey = p.pooling_mode;
    const enabled = Object.entries(p)
      .filter(([k, v]) => k.startsWith('pooling_mode_') && v === true)
      .map(([k]) => k);
    if (typeof modeKey === 'string' && (POOLING_MODES as readonly string[]).includes(modeKey)) mode = modeKey as Pooling;
    else if (enabled.length === 1 && Object.hasOwn(POOLING_KEYS, enabled[0])) mode = POOLING_KEYS[enabled[0]];
    else {
      throw new UnsupportedModelError('unsupported pooling in 1_Pooling/config.json', {
        expected: `exactly one of ${Object.keys(POOLING_KEYS).join(', ')} (or pooling_mode: ${POOLING_MODES.join(' | ')})`,
        received: enabled.join(', ') || String(modeKey),
      });
    }
  }
  return { pooling: mode, normalize, layerNormBeforeTruncate };
}
