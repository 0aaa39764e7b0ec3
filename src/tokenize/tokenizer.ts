import * as transformers from '@huggingface/transformers';
import { InvalidInputError, ModelFormatError } from '../errors.ts';

/**
 * Tokenization through @huggingface/transformers' tokenizers, built from the tokenizer.json and
 * tokenizer_config.json objects our loader fetched (so the same bytes, progress and cache serve both,
 * and transformers.js never reaches for the network itself).
 */

export interface Encoded {
  /** Token ids with the family's special tokens, at most `maxTokens` long. */
  ids: Int32Array[];
  /** truncated[i] is true when text i was cut to `maxTokens`. */
  truncated: boolean[];
}

type TokenizerCtor = new (json: unknown, config: unknown) => transformers.PreTrainedTokenizer;

export class TextTokenizer {
  readonly inner: transformers.PreTrainedTokenizer;
  readonly padId: number;
  /** CLS/BOS, EOS/SEP, PAD and UNK ids: the ones BGE-M3 drops from lexical weights. */
  readonly specialIds: ReadonlySet<number>;

  constructor(tokenizerJson: unknown, tokenizerConfig: unknown) {
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || !('model' in tokenizerJson)) {
      throw new ModelFormatError('tokenizer.json is not a Hugging Face tokenizers file', { expected: 'an object with a "model" key', received: tokenizerJson });
    }
    const config = (tokenizerConfig ?? {}) as Record<string, unknown>;
    // Same lookup as transformers.js' AutoTokenizer: tokenizer_class without its "Fast" suffix.
    const className = String(config.tokenizer_class ?? 'PreTrainedTokenizer').replace(/Fast$/, '');
    const lib = transformers as unknown as Record<string, unknown>;
    const Ctor = (typeof lib[className] === 'function' ? lib[className] : transformers.PreTrainedTokenizer) as TokenizerCtor;
    this.inner = new Ctor(tokenizerJson, config);
    const t = this.inner as unknown as Record<string, number | undefined>;
    const pad = t.pad_token_id;
    if (pad === undefined || pad === null) throw new ModelFormatError('tokenizer has no pad token', { expected: 'pad_token in tokenizer_config.json', received: config.pad_token });
    this.padId = pad;
    const special = new Set<number>();
    for (const key of ['cls_token_id', 'bos_token_id', 'eos_token_id', 'sep_token_id', 'pad_token_id', 'unk_token_id']) {
      const id = t[key];
      if (typeof id === 'number') special.add(id);
    }
    // BERT-style configs name CLS/SEP but the tokenizer class may not expose ids for them.
    for (const key of ['cls_token', 'sep_token']) {
      const tok = config[key];
      if (typeof tok === 'string') {
        const id = this.tokenToId(tok);
        if (id !== undefined) special.add(id);
      }
    }
    this.specialIds = special;
  }

  tokenToId(token: string): number | undefined {
    const inner = this.inner as unknown as { _tokenizer: { token_to_id(t: string): number | undefined } };
    return inner._tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    const inner = this.inner as unknown as { _tokenizer: { id_to_token(i: number): string | undefined } };
    return inner._tokenizer.id_to_token(id);
  }

  /**
   * Encodes each text with its special tokens, truncating to `maxTokens` the way Hugging Face's Python
   * tokenizers do for a single sequence: the content is cut, the template's specials are kept
   * (`<s> … </s>`). transformers.js 4.3's own truncation cuts the finished sequence and drops the
   * closing `</s>`, so we do it here.
   */
  encode(texts: readonly string[], maxTokens: number): Encoded {
    const ids: Int32Array[] = [];
    const truncated: boolean[] = [];
    for (const text of texts) {
      const full = this.inner.encode(text);
      if (full.length <= maxTokens) {
        ids.push(Int32Array.from(full));
        truncated.push(false);
        continue;
      }
      const content = this.inner.encode(text, { add_special_tokens: false });
      const extra = full.length - content.length;
      // Locate the content inside the templated sequence: full = prefix + content + suffix.
      let p = 0;
      while (p <= extra && !content.every((id, i) => full[p + i] === id)) p++;
      if (p > extra || maxTokens <= extra) {
        throw new ModelFormatError('cannot truncate: the tokenizer template is not prefix + text + suffix', { expected: `room for ${extra} special tokens in ${maxTokens}`, received: full.length });
      }
      const kept = content.slice(0, maxTokens - extra);
      ids.push(Int32Array.from([...full.slice(0, p), ...kept, ...full.slice(p + content.length)]));
      truncated.push(true);
    }
    return { ids, truncated };
  }
}

/** Validates what callers pass as texts: a non-empty array of non-empty strings. */
export function validateTexts(texts: unknown): string[] {
  if (!Array.isArray(texts)) throw new InvalidInputError('texts must be an array of strings', { expected: 'string[]', received: texts });
  if (texts.length === 0) throw new InvalidInputError('texts is empty', { expected: 'at least one string', received: texts });
  texts.forEach((t, i) => {
    if (typeof t !== 'string') throw new InvalidInputError(`texts[${i}] is not a string`, { expected: 'string', received: t });
    if (t.length === 0) throw new InvalidInputError(`texts[${i}] is an empty string`, { expected: 'a non-empty string', received: t });
  });
  return texts as string[];
}

/** One padded batch, the unit every BatchEncoder encodes. */
export interface EncoderBatch {
  /** (B, T) token ids, right-padded with pad_token_id. */
  inputIds: Int32Array;
  /** (B, T) 1 for real tokens, 0 for padding. */
  attentionMask: Uint8Array;
  B: number;
  T: number;
}

/** Right-pads sequences into one (B, T) batch with an attention mask. */
export function padBatch(seqs: readonly Int32Array[], padId: number): EncoderBatch {
  const B = seqs.length;
  const T = Math.max(...seqs.map((s) => s.length));
  const inputIds = new Int32Array(B * T).fill(padId);
  const attentionMask = new Uint8Array(B * T);
  seqs.forEach((s, b) => {
    inputIds.set(s, b * T);
    attentionMask.fill(1, b * T, b * T + s.length);
  });
  return { inputIds, attentionMask, B, T };
}
