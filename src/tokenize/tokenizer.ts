import * as transformers from '@huggingface/transformers';
import { InvalidInputError, ModelFormatError } from '../errors.ts';
import { cutPrefix, wellFormed } from './cut.ts';

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

/**
 * Special tokens a Python tokenizer class defines when tokenizer_config.json leaves them out
 * (transformers XLMRobertaTokenizer / BertTokenizer __init__ defaults): they are in its special_tokens_map.
 */
const CLASS_SPECIAL_TOKENS: Record<string, Record<string, string>> = {
  XLMRobertaTokenizer: { cls_token: '<s>', eos_token: '</s>', pad_token: '<pad>', unk_token: '<unk>' },
  BertTokenizer: { cls_token: '[CLS]', pad_token: '[PAD]', unk_token: '[UNK]' },
};

type TokenizerCtor = new (json: unknown, config: unknown) => transformers.PreTrainedTokenizer;

export class TextTokenizer {
  readonly inner: transformers.PreTrainedTokenizer;
  readonly padId: number;
  /** The ids of the cls, eos, pad and unk tokens: the ones BGE-M3 drops from lexical weights. */
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
    // Exactly the ids FlagEmbedding drops from lexical weights: those of special_tokens_map's cls_token,
    // eos_token, pad_token and unk_token, where the tokenizer defines them (m3.py _process_token_weights).
    // A BERT tokenizer has no eos_token, so upstream keeps [SEP]; so do we.
    const defaults = CLASS_SPECIAL_TOKENS[className] ?? {};
    const special = new Set<number>();
    for (const key of ['cls_token', 'eos_token', 'pad_token', 'unk_token']) {
      const v = config[key] ?? defaults[key];
      const tok = typeof v === 'string' ? v : v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined;
      const id = tok === undefined ? undefined : this.tokenToId(tok);
      if (id !== undefined && id !== null) special.add(id);
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
   *
   * Which texts are accepted (one rule for every backend): lone surrogates become U+FFFD first (what any
   * UTF-8 round trip delivers), then a text must give at least one content token. '', ' ', '\uFFFD' and
   * other texts the normalizer erases are rejected with InvalidInputError naming their index: their
   * "embedding" would be the template's alone, the same vector for every such text. '\0' is not erased
   * by XLM-R's normalizer and embeds as `<s> ▁ <unk> </s>`, as in Python.
   *
   * Texts longer than `CUT_CHARS_PER_TOKEN · maxTokens` characters are tokenised from a prefix (cut.ts),
   * so a huge text neither overflows transformers.js's stack nor costs more than its kept tokens.
   */
  encode(texts: readonly string[], maxTokens: number): Encoded {
    const ids: Int32Array[] = [];
    const truncated: boolean[] = [];
    texts.forEach((raw, i) => {
      const text = wellFormed(raw);
      const r = text.length > CUT_CHARS_PER_TOKEN * maxTokens + CUT_SLACK ? this.encodeHuge(text, maxTokens, i) : this.encodeWhole(text, maxTokens, i);
      ids.push(r.ids);
      truncated.push(r.truncated);
    });
    return { ids, truncated };
  }

  /** transformers.js's encode, with its stack overflow on huge inputs turned into a typed error. */
  private ids(text: string, specials: boolean, index: number): number[] {
    try {
      return this.inner.encode(text, { add_special_tokens: specials });
    } catch (e) {
      if (e instanceof RangeError) throw new InvalidInputError(`texts[${index}] is too long to tokenise`, { expected: 'fewer than about 100k tokens in the part of a text the model can use', received: `${text.length} characters`, cause: e });
      throw e;
    }
  }

  private noTokens(index: number, text: string): InvalidInputError {
    return new InvalidInputError(`texts[${index}] has no tokens (empty, or only characters the tokenizer's normalizer removes)`, { expected: 'a text with at least one token', received: text });
  }

  private encodeWhole(text: string, maxTokens: number, index: number): { ids: Int32Array; truncated: boolean } {
    const full = this.ids(text, true, index);
    const { head, tail } = this.template(maxTokens);
    if (full.length <= head.length + tail.length) throw this.noTokens(index, text);
    if (full.length <= maxTokens) return { ids: Int32Array.from(full), truncated: false };
    const content = this.ids(text, false, index);
    return { ids: Int32Array.from([...head, ...content.slice(0, maxTokens - head.length - tail.length), ...tail]), truncated: true };
  }

  /**
   * A text too long to tokenise whole: encode a prefix with more content tokens than fit (doubling it
   * until it has), keep the first `budget`. A cut before a space is exact (cut.ts). A cut inside a
   * pre-token keeps CUT_MARGIN tokens of distance and must agree with a second cut twice as far out.
   */
  private encodeHuge(text: string, maxTokens: number, index: number): { ids: Int32Array; truncated: boolean } {
    const { head, tail } = this.template(maxTokens);
    const budget = maxTokens - head.length - tail.length;
    for (let chars = CUT_CHARS_PER_TOKEN * maxTokens + CUT_SLACK; ; chars *= 2) {
      if (chars >= text.length) return this.encodeWhole(text, maxTokens, index);
      const p = cutPrefix(text, chars);
      const content = this.ids(p.text, false, index);
      if (content.length < budget + (p.atSpace ? 1 : CUT_MARGIN)) continue;
      if (!p.atSpace) {
        const check = this.ids(cutPrefix(text, 2 * chars).text, false, index);
        if (!content.slice(0, budget + 1).every((id, k) => check[k] === id)) continue;
      }
      return { ids: Int32Array.from([...head, ...content.slice(0, budget), ...tail]), truncated: true };
    }
  }

  private tpl: { head: number[]; tail: number[] } | null = null;

  /** The single-sequence template around the content (`<s>` / `</s>`, `[CLS]` / `[SEP]`), from encoding one word. */
  private template(maxTokens: number): { head: number[]; tail: number[] } {
    if (!this.tpl) {
      const probe = 'a';
      const full = this.inner.encode(probe);
      const content = this.inner.encode(probe, { add_special_tokens: false });
      const extra = full.length - content.length;
      // Locate the content inside the templated sequence: full = prefix + content + suffix.
      let p = 0;
      while (p <= extra && !content.every((id, i) => full[p + i] === id)) p++;
      if (content.length === 0 || p > extra) {
        throw new ModelFormatError('cannot truncate: the tokenizer template is not prefix + text + suffix', { expected: 'a template such as <s> $A </s>', received: full.length });
      }
      this.tpl = { head: full.slice(0, p), tail: full.slice(p + content.length) };
    }
    const extra = this.tpl.head.length + this.tpl.tail.length;
    if (maxTokens <= extra) throw new ModelFormatError('cannot truncate: no room for content', { expected: `room for ${extra} special tokens in ${maxTokens}`, received: maxTokens });
    return this.tpl;
  }
}

/**
 * First cut for huge texts, in UTF-16 units per token of maxTokens: four covers Latin text (about 4–5
 * characters per XLM-R token) and CJK (about 1); denser-than-that text doubles the cut until it fits.
 */
export const CUT_CHARS_PER_TOKEN = 4;
const CUT_SLACK = 1024;
/** Tokens kept between the last kept token and a cut inside a pre-token. */
const CUT_MARGIN = 64;

/** Validates what callers pass as texts: a non-empty, dense array of non-empty strings (TextTokenizer.encode then requires a token). */
export function validateTexts(texts: unknown): string[] {
  if (!Array.isArray(texts)) throw new InvalidInputError('texts must be an array of strings', { expected: 'string[]', received: texts });
  if (texts.length === 0) throw new InvalidInputError('texts is empty', { expected: 'at least one string', received: texts });
  // A plain loop: forEach would skip the holes of a sparse array such as [, 'a'].
  for (let i = 0; i < texts.length; i++) {
    const t: unknown = texts[i];
    if (typeof t !== 'string') throw new InvalidInputError(`texts[${i}] is not a string`, { expected: 'string', received: i in texts ? t : 'a hole in a sparse array' });
    // Caught here without tokenising; texts that only the normalizer empties are caught by encode().
    if (t.length === 0) throw new InvalidInputError(`texts[${i}] is an empty string`, { expected: 'a text with at least one token', received: t });
  }
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
