import type { EmbedResult } from './service-types.ts';

/** The buffers of a result that can move (not copy) across the worker boundary. */
export function resultTransferables(r: EmbedResult): ArrayBuffer[] {
  const views = [r.embeddings, r.tokens, ...(r.sparse ?? []).flatMap((s) => [s.ids, s.weights]), ...(r.colbert ?? []).map((c) => c.data)];
  return [...new Set(views.map((a) => a.buffer as ArrayBuffer))];
}
