import { ModelFormatError, UnsupportedModelError, WeightError } from '../errors.ts';
import { parsePooling, type PoolingConfig } from './config.ts';
import { readSafetensors } from './safetensors.ts';
import { numel, toFloat32, type RawTensor } from './tensor.ts';
import { readTorchStateDict } from './torch.ts';

/**
 * sentence-transformers' module stack (modules.json) and prompts (config_sentence_transformers.json).
 *
 * A model is Transformer → Pooling → Dense* → Normalize? (sentence_transformers/models/*.py). We run them in
 * that order: pool → each Dense (y = act(W·x + b), W: (out, in)) → Matryoshka truncation → L2 normalise.
 * Truncation applies to the last Dense layer's output, as sentence-transformers' `truncate_dim` does (it
 * cuts the final embedding). Any other module type is an UnsupportedModelError naming it: skipping a
 * module silently would give vectors from another function.
 */

export type DenseActivation = 'identity' | 'tanh' | 'relu' | 'sigmoid' | 'gelu';

/** One sentence_transformers.models.Dense (config keys verbatim: in_features, out_features, bias, activation_function). */
export interface DenseModule {
  path: string;
  in_features: number;
  out_features: number;
  activation: DenseActivation;
  /** (out_features, in_features) row-major, as torch.nn.Linear stores it. */
  weight: Float32Array;
  /** (out_features), or null for bias: false. */
  bias: Float32Array | null;
}

export interface ModuleStack {
  pooling: PoolingConfig;
  /** Dense layers after pooling, in order; empty for most models. */
  dense: DenseModule[];
  /** config_sentence_transformers.json `prompts` (name → text prepended before tokenisation). */
  prompts: Record<string, string>;
  /** `default_prompt_name`: the prompt used when a call names none (null: no prompt). */
  defaultPromptName: string | null;
  /** Whether the folder has a modules.json (without one the loader picks the family's default pooling). */
  declared: boolean;
}

// torch.nn class names as sentence-transformers saves them (fullname(self.activation_function)).
const ACTIVATIONS: Record<string, DenseActivation> = { Identity: 'identity', Tanh: 'tanh', ReLU: 'relu', Sigmoid: 'sigmoid', GELU: 'gelu' };

const KINDS = ['Transformer', 'Pooling', 'Dense', 'Normalize', 'LayerNorm'] as const;
type Kind = (typeof KINDS)[number];

function kindOf(type: string): Kind | null {
  for (const k of KINDS) if (type === k || type === `sentence_transformers.models.${k}` || type.endsWith(`.models.${k}`)) return k;
  return null;
}

export type JsonFetcher = (file: string) => Promise<unknown>;
export type BinaryFetcher = (file: string) => Promise<Uint8Array | null>;

/** Reads modules.json, the module folders' configs and weights, and the prompts. Every fetch is optional (a 404 is null). */
export async function loadModuleStack(hidden: number, json: JsonFetcher, binary: BinaryFetcher): Promise<ModuleStack> {
  const [modules, st] = await Promise.all([json('modules.json'), json('config_sentence_transformers.json')]);
  const { prompts, defaultPromptName } = parsePrompts(st);
  if (modules === null || modules === undefined) return { pooling: parsePooling(null, null), dense: [], prompts, defaultPromptName, declared: false };
  if (!Array.isArray(modules)) throw new UnsupportedModelError('modules.json must be a list', { expected: 'array', received: modules });
  const list = modules.map((m, i) => {
    const type = String((m as { type?: unknown })?.type ?? '');
    const kind = kindOf(type);
    if (!kind) {
      throw new UnsupportedModelError(`modules.json names a module m3web does not run: ${type || '(no type)'}`, {
        expected: `sentence_transformers.models.{${KINDS.join(',')}}`,
        received: type,
      });
    }
    const path = (m as { path?: unknown }).path;
    return { kind, type, path: typeof path === 'string' ? path.replace(/^\/+|\/+$/g, '') : '', index: i };
  });
  const order = list.map((m) => m.kind).join(' → ');
  if (list[0]?.kind !== 'Transformer' || list[1]?.kind !== 'Pooling' || list.slice(2).some((m) => m.kind === 'Transformer' || m.kind === 'Pooling')) {
    throw new UnsupportedModelError('modules.json must start with a Transformer and one Pooling module', { expected: 'Transformer → Pooling → Dense* → Normalize?', received: order });
  }
  const tail = list.slice(2);
  const lastDense = tail.map((m) => m.kind).lastIndexOf('Dense');
  if (tail.slice(0, lastDense).some((m) => m.kind !== 'Dense') || (lastDense >= 0 && tail.some((m) => m.kind === 'LayerNorm'))) {
    throw new UnsupportedModelError('modules.json has modules in an order m3web does not run', { expected: 'Transformer → Pooling → Dense* → Normalize? (or → LayerNorm without Dense)', received: order });
  }
  const poolingJson = await json(`${list[1].path || '1_Pooling'}/config.json`);
  if (poolingJson && typeof poolingJson === 'object' && (poolingJson as Record<string, unknown>).include_prompt === false) {
    throw new UnsupportedModelError('1_Pooling/config.json sets include_prompt: false (pooling that skips the prompt tokens) which m3web does not run', { expected: 'include_prompt true or absent', received: false });
  }
  const pooling = parsePooling(modules, poolingJson);
  const dense: DenseModule[] = [];
  let width = hidden;
  for (const m of tail) {
    if (m.kind !== 'Dense') continue;
    const d = await loadDense(m.path, json, binary);
    if (d.in_features !== width) throw new UnsupportedModelError(`Dense module ${m.path} does not fit the vector before it`, { expected: `in_features ${width}`, received: d.in_features });
    width = d.out_features;
    dense.push(d);
  }
  return { pooling, dense, prompts, defaultPromptName, declared: true };
}

function parsePrompts(st: unknown): { prompts: Record<string, string>; defaultPromptName: string | null } {
  const prompts: Record<string, string> = Object.create(null);
  if (st === null || st === undefined) return { prompts, defaultPromptName: null };
  if (typeof st !== 'object' || Array.isArray(st)) throw new ModelFormatError('config_sentence_transformers.json must be an object', { expected: 'object', received: st });
  const o = st as Record<string, unknown>;
  if (o.prompts !== undefined && o.prompts !== null) {
    if (typeof o.prompts !== 'object' || Array.isArray(o.prompts)) throw new ModelFormatError('config_sentence_transformers.json "prompts" must map names to strings', { expected: '{ name: text }', received: o.prompts });
    for (const [k, v] of Object.entries(o.prompts)) {
      if (typeof v !== 'string') throw new ModelFormatError(`config_sentence_transformers.json prompt "${k}" is not a string`, { expected: 'string', received: v });
      prompts[k] = v;
    }
  }
  const name = o.default_prompt_name ?? null;
  if (name !== null && (typeof name !== 'string' || !Object.hasOwn(prompts, name))) {
    throw new ModelFormatError('config_sentence_transformers.json "default_prompt_name" names no prompt', { expected: `one of ${Object.keys(prompts).join(', ') || '(no prompts)'} or null`, received: name });
  }
  return { prompts, defaultPromptName: name as string | null };
}

async function loadDense(path: string, json: JsonFetcher, binary: BinaryFetcher): Promise<DenseModule> {
  const cfg = (await json(`${path}/config.json`)) as Record<string, unknown> | null;
  if (!cfg || typeof cfg !== 'object') throw new ModelFormatError(`Dense module ${path} has no config.json`, { expected: `${path}/config.json with in_features, out_features`, received: cfg });
  const int = (k: string): number => {
    const v = cfg[k];
    if (!Number.isInteger(v) || (v as number) < 1) throw new ModelFormatError(`${path}/config.json key "${k}" is invalid`, { expected: 'a positive integer', received: v });
    return v as number;
  };
  const in_features = int('in_features');
  const out_features = int('out_features');
  const hasBias = cfg.bias === undefined ? true : cfg.bias === true;
  // sentence-transformers' Dense defaults to Tanh when no activation is saved.
  const actName = String(cfg.activation_function ?? 'torch.nn.modules.activation.Tanh')
    .split('.')
    .pop()!;
  const activation = ACTIVATIONS[actName];
  if (!activation) throw new UnsupportedModelError(`Dense module ${path} uses an activation m3web does not run`, { expected: Object.keys(ACTIVATIONS).join(', '), received: cfg.activation_function });
  // Newer sentence-transformers save model.safetensors, older ones pytorch_model.bin (keys linear.weight, linear.bias).
  let tensors: Map<string, RawTensor> | null = null;
  const st = await binary(`${path}/model.safetensors`);
  if (st) tensors = readSafetensors(st);
  else {
    const pt = await binary(`${path}/pytorch_model.bin`);
    if (pt) tensors = readTorchStateDict(pt);
  }
  if (!tensors) throw new WeightError(`Dense module ${path} has no weights`, { expected: `${path}/model.safetensors or ${path}/pytorch_model.bin`, received: 'HTTP 404 for both' });
  const pick = (name: string, shape: number[]): Float32Array => {
    const t = tensors.get(name);
    if (!t) throw new WeightError(`Dense module ${path} lacks "${name}"`, { expected: `a tensor of shape [${shape.join(', ')}]`, received: [...tensors.keys()].join(', ') });
    if (numel(t.shape) !== numel(shape) || t.shape[0] !== shape[0]) throw new WeightError(`Dense module ${path} "${name}" has the wrong shape`, { expected: `[${shape.join(', ')}]`, received: `[${t.shape.join(', ')}]` });
    return toFloat32(t);
  };
  return { path, in_features, out_features, activation, weight: pick('linear.weight', [out_features, in_features]), bias: hasBias ? pick('linear.bias', [out_features]) : null };
}

/** Width of the vector the stack ends with: the last Dense layer's out_features, else the encoder's hidden size. */
export function outputWidth(stack: ModuleStack | undefined, hidden: number): number {
  return stack?.dense.length ? stack.dense[stack.dense.length - 1].out_features : hidden;
}
