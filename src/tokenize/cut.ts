/**
 * Cutting huge texts before tokenisation. transformers.js 4.3's tokenizers overflow the call stack
 * (an untyped RangeError) above about 120k tokens of one text, and tokenising text that truncation
 * will drop anyway is wasted time, so the tokenizer first encodes a prefix of the text.
 *
 * The prefix must never change the tokens that are kept. A cut just before an ASCII space is exact:
 * every pre-tokenizer the engine meets splits there (Metaspace for XLM-R / SentencePiece, BertPreTokenizer
 * and Whitespace for WordPiece, ByteLevel's regex for BPE), the normalizers in use act per character
 * (NFKC / NFD compose nothing across a space; `Replace(" {2,}")` and `Strip` only touch spaces and the
 * ends), so the words before the space tokenise exactly as they do inside the whole text. Without a
 * space nearby (CJK, Thai) the cut lands inside one pre-token, where a Unigram / WordPiece segmentation
 * can depend on what follows; there the tokenizer keeps a margin of tokens before the cut and checks the
 * kept tokens against a second, longer cut (TextTokenizer.encode).
 */

/** How far past the nominal cut a space is looked for, in UTF-16 units. */
export const SPACE_WINDOW = 512;

export interface Prefix {
  text: string;
  /** The cut is just before an ASCII space (exact), else inside a pre-token (checked by the caller). */
  atSpace: boolean;
}

/** The first `chars` (or a few more) UTF-16 units of `text`, cut before a space when one is near, never inside a surrogate pair. */
export function cutPrefix(text: string, chars: number): Prefix {
  if (text.length <= chars) return { text, atSpace: true };
  const space = text.indexOf(' ', chars);
  if (space >= 0 && space - chars <= SPACE_WINDOW) return { text: text.slice(0, space), atSpace: true };
  let end = chars;
  const c = text.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end--; // keep a surrogate pair whole
  return { text: text.slice(0, end), atSpace: false };
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Replaces lone surrogates with U+FFFD, as String.prototype.toWellFormed and every UTF-8 encoder do:
 * the text is then tokenised as it would be after any UTF-8 round trip (a file, fetch, Python's tokenizers).
 */
export function wellFormed(text: string): string {
  return /[\uD800-\uDFFF]/.test(text) ? text.replace(LONE_SURROGATE, '\uFFFD') : text;
}
