import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidInputError } from '../errors.ts';
import { REPO_ROOT, SHARED_DATA, sharedDataAvailable } from '../../tools/fixtures/paths.ts';
import { cutPrefix, wellFormed } from './cut.ts';
import { CUT_CHARS_PER_TOKEN, TextTokenizer, validateTexts } from './tokenizer.ts';

const load = (name: string) => {
  const dir = resolve(REPO_ROOT, 'fixtures/tokenizers', name);
  return new TextTokenizer(JSON.parse(readFileSync(resolve(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(resolve(dir, 'tokenizer_config.json'), 'utf8')));
};
const xlmr = load('xlmr-unigram');
const bert = load('bert-wordpiece-uncased');

/** The brute-force answer: tokenise the whole text, keep the template and the first budget content tokens. */
function bruteForce(tok: TextTokenizer, text: string, maxTokens: number): number[] {
  const full = tok.inner.encode(text);
  if (full.length <= maxTokens) return full;
  const content = tok.inner.encode(text, { add_special_tokens: false });
  const extra = full.length - content.length;
  return [...full.slice(0, 1), ...content.slice(0, maxTokens - extra), ...full.slice(full.length - (extra - 1))];
}

describe('which texts are accepted (one rule, documented in TextTokenizer.encode)', () => {
  it('rejects texts without a content token, whatever their length in characters', () => {
    for (const t of ['', ' ', '\u3000\t\n', '\uFFFD', '\uD800']) {
      expect(() => xlmr.encode([t], 512), JSON.stringify(t)).toThrow(InvalidInputError);
      expect(() => xlmr.encode(['fine', t], 512), JSON.stringify(t)).toThrow(/texts\[1\] has no tokens/);
    }
  });
  it('accepts what the normalizer keeps: \\0 is <unk>, as in Python', () => {
    expect([...xlmr.encode(['\0'], 512).ids[0]]).toEqual([0, 4, 3, 2]);
  });
  it('treats a lone surrogate as U+FFFD (what a UTF-8 round trip gives), a paired one as its character', () => {
    expect(wellFormed('a\uDC00b\uD800')).toBe('a\uFFFDb\uFFFD');
    expect(wellFormed('x\uD83D\uDE00y')).toBe('x\uD83D\uDE00y');
    expect([...xlmr.encode(['a\uDC00b'], 512).ids[0]]).toEqual([...xlmr.encode(['a\uFFFDb'], 512).ids[0]]);
  });
  it('gives holes and non-strings a typed error, not a TypeError', () => {
    // eslint-disable-next-line no-sparse-arrays
    expect(() => validateTexts([, 'a'])).toThrow(/texts\[0\] is not a string; expected string; received "a hole in a sparse array"/);
    expect(() => validateTexts(['a', null])).toThrow(InvalidInputError);
    expect(() => validateTexts(['a', ''])).toThrow(/texts\[1\] is an empty string/);
    expect(() => validateTexts('a')).toThrow(InvalidInputError);
  });
});

describe('sparse drops exactly the ids FlagEmbedding drops (cls, eos, pad, unk)', () => {
  it('XLM-R: <s> </s> <pad> <unk>; BERT: [CLS] [PAD] [UNK] but not [SEP] (BERT has no eos_token)', () => {
    expect([...xlmr.specialIds].sort((a, b) => a - b)).toEqual([0, 1, 2, 3]);
    const ids = ['[CLS]', '[PAD]', '[UNK]'].map((t) => bert.tokenToId(t)!);
    expect([...bert.specialIds].sort((a, b) => a - b)).toEqual(ids.sort((a, b) => a - b));
    expect(bert.specialIds.has(bert.tokenToId('[SEP]')!)).toBe(false);
  });
});

describe('huge texts: cut before tokenising without changing the kept tokens', () => {
  it('cuts before a space when one is near, else inside a pre-token without splitting a surrogate pair', () => {
    expect(cutPrefix('aaaa bbbb', 2)).toEqual({ text: 'aaaa', atSpace: true });
    expect(cutPrefix('ab\uD83D\uDE00cd', 3)).toEqual({ text: 'ab', atSpace: false });
    expect(cutPrefix('short', 10)).toEqual({ text: 'short', atSpace: true });
  });

  it("a text past transformers.js's stack limit no longer throws a RangeError, and keeps the ids of its first part", () => {
    const word = 'lorem ipsum dolor sit amet, consectetur adipiscing elit ';
    const huge = word.repeat(Math.ceil(300_000 / word.length)); // ~300k characters, ~125k tokens whole
    expect(() => xlmr.inner.encode(huge)).toThrow(RangeError);
    const r = xlmr.encode([huge], 512);
    expect(r.truncated).toEqual([true]);
    expect([...r.ids[0]]).toEqual(bruteForce(xlmr, huge.slice(0, 20_000), 512));
  });

  describe.skipIf(!sharedDataAvailable())('on XQuAD text (../shared/data)', () => {
    const paragraphs = (lang: string) => (JSON.parse(readFileSync(resolve(SHARED_DATA, `datasets/xquad/xquad.${lang}.json`), 'utf8')).data as { paragraphs: { context: string }[] }[]).flatMap((a) => a.paragraphs.map((p) => p.context));
    // zh without its spaces: one pre-token, so the cut lands inside it (the checked path); en and th cut at spaces.
    const texts: Record<string, () => string> = { en: () => paragraphs('en').join(' '), zh: () => paragraphs('zh').join('').replace(/ /g, ''), th: () => paragraphs('th').join(' ') };
    const cases = [
      { lang: 'en', name: 'xlmr', tok: xlmr, maxTokens: 512 },
      { lang: 'en', name: 'bert', tok: bert, maxTokens: 512 },
      { lang: 'zh', name: 'xlmr', tok: xlmr, maxTokens: 512 },
      { lang: 'zh', name: 'xlmr', tok: xlmr, maxTokens: 8192 },
      { lang: 'zh', name: 'bert', tok: bert, maxTokens: 512 },
      { lang: 'th', name: 'xlmr', tok: xlmr, maxTokens: 512 },
    ];
    it.each(cases)('$lang: $name at maxTokens $maxTokens keeps exactly the brute-force ids', ({ lang, tok, maxTokens }) => {
      // Long enough to be cut (> CUT_CHARS_PER_TOKEN · maxTokens characters), short enough to tokenise whole.
      const text = texts[lang]().slice(0, CUT_CHARS_PER_TOKEN * maxTokens * 2 + 5000);
      expect(cutPrefix(text, CUT_CHARS_PER_TOKEN * maxTokens).atSpace).toBe(lang !== 'zh');
      const got = tok.encode([text], maxTokens);
      expect(got.truncated).toEqual([true]);
      expect(got.ids[0].length).toBe(maxTokens);
      expect([...got.ids[0]]).toEqual(bruteForce(tok, text, maxTokens));
    });
  });
  if (!sharedDataAvailable()) console.warn(`skipping the XQuAD huge-text checks: ${SHARED_DATA} is absent`);
});
