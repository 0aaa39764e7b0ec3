/**
 * Bulk embedding from the command line, on the same engine as the browser (Node + Dawn WebGPU):
 *   npx tsx tools/embed-jsonl.ts --model <folder|url|hub id> --in texts.jsonl --out vectors.jsonl [--layers k] [--dims d] [--weights auto|f32|f16] [--field text] [--batch 256]
 * --model takes a local model folder (Hugging Face layout), a base URL or a hub id (src/node.ts decides which).
 * Each input line is a JSON object with a text field (default "text"); each output line repeats the
 * input object with an "embedding" array added. Progress goes to stderr. A failure prints one line (the error's
 * class and message, which says what was expected and what was received) and exits 1; bad usage exits 2.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { InvalidInputError } from '../src/errors.ts';
import { openEngine } from '../src/node.ts';

const USAGE = 'usage: tsx tools/embed-jsonl.ts --model <folder|url|hub id> --in texts.jsonl --out vectors.jsonl [--layers k] [--dims d] [--weights auto|f32|f16] [--field text] [--batch 256]';

function parse(): Record<string, string | undefined> {
  try {
    const { values } = parseArgs({
      options: {
        model: { type: 'string' },
        in: { type: 'string' },
        out: { type: 'string' },
        layers: { type: 'string' },
        dims: { type: 'string' },
        weights: { type: 'string', default: 'auto' },
        field: { type: 'string', default: 'text' },
        batch: { type: 'string', default: '256' },
      },
    });
    if (values.model && values.in && values.out) return values;
    console.error(USAGE);
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
  }
  process.exit(2);
}

/** A whole number for --layers / --dims / --batch; the engine checks the range against the model. */
function int(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new InvalidInputError(`--${name} must be a whole number`, { expected: 'digits, e.g. 8', received: v });
  return Number(v);
}

async function main(values: Record<string, string | undefined>): Promise<void> {
  const field = values.field!;
  const chunk = int('batch', values.batch)!;
  if (chunk < 1) throw new InvalidInputError('--batch must be at least 1', { expected: 'an integer >= 1', received: chunk });
  const opts = { layers: int('layers', values.layers), dims: int('dims', values.dims) };
  const m3 = await openEngine(values.model!, {
    weights: values.weights as 'auto' | 'f32' | 'f16',
    load: { onProgress: (p) => p.phase === 'download' && p.total && process.stderr.write(`\rdownloading ${p.file}: ${((100 * p.loaded) / p.total).toFixed(0)}%   `) },
  });
  try {
    const out = createWriteStream(values.out!);
    let pending: Record<string, unknown>[] = [];
    let done = 0;
    let lineNo = 0;
    const t0 = performance.now();

    const flush = async (): Promise<void> => {
      if (!pending.length) return;
      const texts = pending.map((o, i) => {
        const t = o[field];
        if (typeof t !== 'string') throw new InvalidInputError(`input record ${done + i + 1}: field "${field}" is not a string`, { expected: 'a string', received: t });
        return t;
      });
      const r = await m3.embed(texts, opts);
      pending.forEach((o, i) => out.write(JSON.stringify({ ...o, embedding: Array.from(r.embeddings.subarray(i * r.dims, (i + 1) * r.dims)) }) + '\n'));
      done += pending.length;
      pending = [];
      process.stderr.write(`\rembedded ${done} texts (${(done / ((performance.now() - t0) / 1000)).toFixed(1)}/s)   `);
    };

    for await (const line of createInterface({ input: createReadStream(values.in!) })) {
      lineNo++;
      if (!line.trim()) continue;
      let record: unknown;
      try {
        record = JSON.parse(line);
      } catch (cause) {
        throw new InvalidInputError(`${values.in} line ${lineNo} is not JSON`, { expected: 'one JSON object per line', received: line, cause });
      }
      if (record === null || typeof record !== 'object' || Array.isArray(record)) throw new InvalidInputError(`${values.in} line ${lineNo} is not a JSON object`, { expected: `an object with a "${field}" string`, received: record });
      pending.push(record as Record<string, unknown>);
      if (pending.length >= chunk) await flush();
    }
    await flush();
    await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    const { config } = m3.model;
    process.stderr.write(`\ndone: ${done} embeddings of ${config.hidden_size} → ${opts.dims ?? 'all'} dims, ${opts.layers ?? config.num_hidden_layers} layers, ${m3.engine.dtype} weights\n`);
  } finally {
    m3.dispose();
  }
}

try {
  await main(parse());
} catch (e) {
  // One line, no stack: typed errors already say what was expected and what was received.
  const line = e instanceof Error ? `${e.name}: ${e.message}` : `Error: ${String(e)}`;
  process.stderr.write(`\n${line.replace(/\s*\n\s*/g, ' ')}\n`);
  process.exit(1);
}
