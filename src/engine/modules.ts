import { InvalidInputError } from '../errors.ts';
import type { EncoderConfig } from '../model/config.ts';
import type { LoadedModel } from '../model/load.ts';
import { outputWidth, type DenseActivation, type DenseModule } from '../model/modules.ts';
import type { ResolvedEmbedOptions } from './options.ts';

/**
 * The sentence-transformers modules after pooling, for every backend (one hook in Engine.run).
 *
 * Order (sentence-transformers' forward order, then its `truncate_dim` on the final embedding):
 *   pool → Dense₁ → … → Denseₖ → Matryoshka truncation to `dims` → L2 normalise (Normalize module).
 * Without a Dense module the backend pools, truncates and normalises itself (one GPU pass). With one, the
 * Engine asks the backend for the pooled vector untruncated and unnormalised, and runs Dense → truncate →
 * normalise here in f32 (a (B, H)·(H, out) product per batch: small next to the encoder).
 *
 * Prompts (config_sentence_transformers.json): `prompt` names one of the model's prompts ('query',
 * 'passage' — or 'document', which sentence-transformers models also use for passages) or is literal text;
 * the text is prepended to every input before tokenisation, as SentenceTransformer.encode(prompt=...) does.
 * Without `prompt` the model's default_prompt_name applies; `prompt: ''` means none.
 */

/** The config `resolveEmbedOptions` validates `dims` against: its hidden_size is the width the stack ends with. */
export function moduleConfig(model: LoadedModel): EncoderConfig {
  const width = outputWidth(model.modules, model.config.hidden_size);
  return width === model.config.hidden_size ? model.config : { ...model.config, hidden_size: width };
}

/** What the backend computes: the options as given, or (with Dense modules) the full pooled vector unnormalised. */
export function encoderOptions(model: LoadedModel, o: ResolvedEmbedOptions): ResolvedEmbedOptions {
  if (!model.modules?.dense.length) return o;
  return { ...o, dims: model.config.hidden_size, normalize: false, layerNormBeforeTruncate: false };
}

/** pooled: (B, H) from the backend → (B, dims): Dense layers, truncation, normalisation. Identity without Dense. */
export function applyModules(model: LoadedModel, pooled: Float32Array, B: number, o: ResolvedEmbedOptions): Float32Array {
  const dense = model.modules?.dense;
  if (!dense?.length) return pooled;
  let x = pooled;
  for (const d of dense) x = denseForward(x, B, d);
  const W = dense[dense.length - 1].out_features;
  const out = new Float32Array(B * o.dims);
  for (let b = 0; b < B; b++) {
    const row = x.subarray(b * W, b * W + o.dims);
    let norm = 1;
    if (o.normalize) {
      let ss = 0;
      for (let i = 0; i < row.length; i++) ss += row[i] * row[i];
      // torch.nn.functional.normalize: x / max(‖x‖₂, 1e-12)
      norm = Math.max(Math.sqrt(ss), 1e-12);
    }
    for (let i = 0; i < o.dims; i++) out[b * o.dims + i] = row[i] / norm;
  }
  return out;
}

/** y = act(W·x + b) per row; x: (B, in), W: (out, in) → (B, out). Accumulates in f64. */
export function denseForward(x: Float32Array, B: number, d: DenseModule): Float32Array {
  const { in_features: I, out_features: O, weight, bias } = d;
  const y = new Float32Array(B * O);
  for (let b = 0; b < B; b++) {
    const xr = x.subarray(b * I, (b + 1) * I);
    for (let o = 0; o < O; o++) {
      let acc = bias ? bias[o] : 0;
      const w = o * I;
      for (let i = 0; i < I; i++) acc += weight[w + i] * xr[i];
      y[b * O + o] = activate(acc, d.activation);
    }
  }
  return y;
}

function activate(v: number, a: DenseActivation): number {
  switch (a) {
    case 'identity':
      return v;
    case 'tanh':
      return Math.tanh(v);
    case 'relu':
      return v > 0 ? v : 0;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-v));
    case 'gelu':
      return 0.5 * v * (1 + erf(v / Math.SQRT2)); // torch.nn.GELU() default: the exact erf form
  }
}

/** erf via Numerical Recipes' erfc fit (erfcc, fractional error < 1.2e-7: below f32's resolution of GELU's output). */
function erf(x: number): number {
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const y = 1 - t * Math.exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? y : -y;
}

/** The prompt text for a call: '' for none. Throws for a name-like prompt the model does not define. */
export function resolvePrompt(model: LoadedModel, prompt: unknown): string {
  const prompts = model.modules?.prompts ?? {};
  if (prompt === undefined) {
    const name = model.modules?.defaultPromptName;
    return name ? prompts[name] : '';
  }
  if (typeof prompt !== 'string') throw new InvalidInputError('option "prompt" must be a string', { expected: "'query', 'passage', a prompt name of the model, or literal text", received: prompt });
  if (Object.hasOwn(prompts, prompt)) return prompts[prompt];
  if (prompt === 'passage' && Object.hasOwn(prompts, 'document')) return prompts.document;
  if (prompt === 'query' || prompt === 'passage' || prompt === 'document') {
    throw new InvalidInputError(`option "prompt": the model defines no "${prompt}" prompt`, {
      expected: `one of the model's prompts (${Object.keys(prompts).join(', ') || 'none in config_sentence_transformers.json'}) or literal text such as "query: "`,
      received: prompt,
    });
  }
  return prompt;
}
