/**
 * Golden inputs: texts of different lengths and scripts, tokenized by OUR tokenizer glue so the PyTorch
 * goldens (tools/goldens/make_goldens.py) and the TypeScript reference see the same ids.
 * `npx tsx tools/goldens/inputs.ts` prints {fixture: {texts, ids}} as JSON.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TextTokenizer } from '../../src/tokenize/tokenizer.ts';
import { modelDir } from '../fixtures/paths.ts';
import { GOLDEN_FIXTURES } from '../fixtures/specs.ts';

export const GOLDEN_TEXTS: Record<string, string[]> = {
  'bert-tiny': [
    'A cat sat on the mat.',
    'Early exit runs only the first k transformer blocks; Matryoshka truncation keeps a prefix of the embedding.',
    'hi',
    'WebGPU kernels compute attention with a running maximum, so the softmax never overflows in float32 arithmetic, even for long inputs.',
    'Über café naïve résumé — accents are stripped by the uncased tokenizer!',
  ],
  'xlmr-tiny': [
    'The quick brown fox jumps over the lazy dog.',
    'Der schnelle braune Fuchs springt über den faulen Hund.',
    '敏捷的棕色狐狸跳过了懒狗。',
    'ok',
    'الثعلب البني السريع يقفز فوق الكلب الكسول، ثم يعود إلى الغابة ليبحث عن طعام قبل غروب الشمس.',
    'Быстрая коричневая лиса прыгает через ленивую собаку.',
    // A literal <pad> in the text: XLM-R gives it padding_idx as its position (create_position_ids_from_input_ids).
    'A literal <pad> inside the text, then more words after it.',
  ],
  'm3bert-tiny': ['Matryoshka over layers and dimensions.', 'Une phrase en français, un peu plus longue que la première, pour tester le remplissage.', 'x', 'Embeddings de texto en el navegador con WebGPU.'],
};

export function goldenInputs(): Record<string, { texts: string[]; ids: number[][] }> {
  const out: Record<string, { texts: string[]; ids: number[][] }> = {};
  for (const name of GOLDEN_FIXTURES) {
    const dir = modelDir(name);
    const tok = new TextTokenizer(JSON.parse(readFileSync(resolve(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(resolve(dir, 'tokenizer_config.json'), 'utf8')));
    const texts = GOLDEN_TEXTS[name];
    out[name] = { texts, ids: tok.encode(texts, 512).ids.map((a) => [...a]) };
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(JSON.stringify(goldenInputs()));
}
