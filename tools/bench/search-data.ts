/**
 * Inputs of the search benchmark and the search browser test: the SciFact corpus (5,183 abstracts with
 * their doc ids and titles) and its claims as queries, from ../shared/data/datasets/scifact.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SHARED_DATA } from '../fixtures/paths.ts';
import { parseCsv } from './csv.ts';

export const SCIFACT_DIR = resolve(SHARED_DATA, 'datasets/scifact');

export function scifactAvailable(): boolean {
  return existsSync(resolve(SCIFACT_DIR, 'scifact.zip')) && existsSync(resolve(SCIFACT_DIR, 'queries.jsonl'));
}

export interface ScifactDoc {
  id: string;
  title: string;
  abstract: string;
}

export function scifactCorpus(): { docs: ScifactDoc[]; queries: string[] } {
  const csv = execFileSync('unzip', ['-p', resolve(SCIFACT_DIR, 'scifact.zip'), 'corpus_train.csv'], { maxBuffer: 64 << 20 }).toString('utf8');
  const [head, ...rows] = parseCsv(csv);
  const [id, title, abs] = ['doc_id', 'title', 'abstract'].map((c) => head.indexOf(c));
  // The abstract column is a Python list literal of sentences: keep the text, drop the brackets and quotes.
  const clean = (a: string) =>
    a
      .replace(/^\[|\]$/g, '')
      .replace(/'\s*\n?\s*'/g, ' ')
      .replace(/^'|'$/g, '')
      .trim();
  const docs = rows.filter((r) => r[id] && r[abs]?.trim()).map((r) => ({ id: r[id], title: r[title] ?? '', abstract: clean(r[abs]) }));
  const queries = readFileSync(resolve(SCIFACT_DIR, 'queries.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).text as string);
  return { docs, queries };
}

/** Title plus the first `words` words of the abstract: what the tests embed when whole abstracts would cost too long. */
export const docText = (d: ScifactDoc, words: number) => `${d.title}. ${d.abstract.split(/\s+/).slice(0, words).join(' ')}`;
