/**
 * The planner's quality axis (src/client/planner.ts): a table over (layers, dims) relative to the best point, from
 * the model's sidecar m3web.json when it has a measured one, else the documented default curve (defaultQuality)
 * at the model's trained exits (m3BERT's mrl_layers × mrl_dims) or on a generic grid; per weight dtype, measured
 * rows (m3web.json `quality_by_dtype`) or the f32 point times DTYPE_RETENTION.
 */
import { PLAN_DTYPES, type ModelShape, type PlanDType } from './plan-cost.ts';

export interface QualityPoint {
  layers: number;
  dims: number;
  quality: number;
}

export interface QualityTable {
  source: 'sidecar' | 'trained-grid' | 'default-curve';
  /** The (layers, dims) the planner may choose, with their quality (f32 weights) relative to the best point. */
  points: QualityPoint[];
  /** Measured quality per weight dtype (sidecar `quality_by_dtype`), on the same scale as `points`. */
  byDtype?: Partial<Record<PlanDType, QualityPoint[]>>;
}

/**
 * Half the layers keeps ≈ 85 % of quality: ../shared/docs/semantics.md, "2D Matryoshka in other
 * families" — adaptive layers (sentence-transformers AdaptiveLayerLoss) "half the layers ≈ 2× speed at
 * ~85 % quality (STS)"; the mxbai-embed-2d card reports 75–85 % for half its 24 layers.
 * Curve: q_layers(f) = f^α with f = l / L, α = ln 0.85 / ln 0.5 ≈ 0.234.
 */
export const LAYER_ALPHA = Math.log(0.85) / Math.log(0.5);
/**
 * Matryoshka truncation: ~8 % of the dims keeps ~98 % of quality (same section of semantics.md).
 * Curve: q_dims(g) = g^β with g = d / D, β = ln 0.98 / ln 0.08 ≈ 0.008.
 */
export const DIMS_BETA = Math.log(0.98) / Math.log(0.08);

/** The default quality curve, relative to the full model; the two effects multiply. */
export function defaultQuality(layers: number, totalLayers: number, dims: number, hidden: number): number {
  return Math.pow(layers / totalLayers, LAYER_ALPHA) * Math.pow(dims / hidden, DIMS_BETA);
}

/** The dims ladder for models without trained prefixes: powers of two from 8 below hidden, then hidden. */
export function dimsLadder(hidden: number): number[] {
  const out: number[] = [];
  for (let d = 8; d < hidden; d *= 2) out.push(d);
  out.push(hidden);
  return out;
}

/**
 * Quality kept by a weight dtype when the model has no measured row for it, relative to f32 at the same
 * (layers, dims). f16 keeps the f32 weights to 11 bits and is taken as equal. int8 and q4 are assumed at
 * the bounds issue #18 sets for a trained model (int8 within 1 %, q4 within 3 % of f32), so an unmeasured
 * quantised point is never credited with more than the project promises; measured rows replace them.
 */
export const DTYPE_RETENTION: Readonly<Record<PlanDType, number>> = { f32: 1, f16: 1, int8: 0.99, q4: 0.97 };

type SidecarTable = { metric?: string; table?: { layers: number; dims: number; score: number }[] };

/**
 * Sidecar `m3web.json`:
 *   { "quality": { "metric": "...", "table": [{ "layers", "dims", "score" }] },        measured with f32 (or f16-upcast) weights
 *     "quality_by_dtype": { "int8": { "metric", "table": [...] }, "q4": { ... } } }    the same metric, same splits, per weight dtype
 * Scores in `quality_by_dtype` share the scale of `quality` (the planner divides all by one best score), so a
 * dtype's rows must come from the same evaluation (tools/eval/run.ts writes both).
 */
export interface Sidecar {
  quality?: SidecarTable;
  quality_by_dtype?: Partial<Record<PlanDType, SidecarTable>>;
}

/** Builds the quality table: sidecar measurements first, else trained exits, else the default grid. */
export function qualityTable(shape: ModelShape, sidecar?: Sidecar | null): QualityTable {
  const valid = (t?: SidecarTable) => t?.table?.filter((r) => Number.isInteger(r.layers) && Number.isInteger(r.dims) && r.layers >= 1 && r.layers <= shape.layers && r.dims >= 1 && r.dims <= shape.hidden && Number.isFinite(r.score) && r.score > 0) ?? [];
  const table = valid(sidecar?.quality);
  if (table.length) {
    const rows = Object.fromEntries(
      PLAN_DTYPES.filter((d) => d !== 'f32')
        .map((d) => [d, valid(sidecar?.quality_by_dtype?.[d])] as const)
        .filter(([, r]) => r.length),
    );
    const best = Math.max(...[table, ...Object.values(rows)].flat().map((r) => r.score));
    const rel = (t: typeof table) => t.map((r) => ({ layers: r.layers, dims: r.dims, quality: r.score / best }));
    const byDtype = Object.fromEntries(Object.entries(rows).map(([d, r]) => [d, rel(r)]));
    return { source: 'sidecar', points: rel(table), ...(Object.keys(byDtype).length ? { byDtype } : {}) };
  }
  const q = (l: number, d: number) => defaultQuality(l, shape.layers, d, shape.hidden);
  if (shape.mrlLayers?.length && shape.mrlDims?.length) {
    // The model was trained at these exits (the planner prefers them): only they are offered.
    const ls = shape.mrlLayers.filter((l) => l >= 1 && l <= shape.layers);
    const ds = shape.mrlDims.filter((d) => d >= 1 && d <= shape.hidden);
    return { source: 'trained-grid', points: ls.flatMap((l) => ds.map((d) => ({ layers: l, dims: d, quality: q(l, d) }))) };
  }
  const points: QualityPoint[] = [];
  for (let l = 1; l <= shape.layers; l++) for (const d of dimsLadder(shape.hidden)) points.push({ layers: l, dims: d, quality: q(l, d) });
  return { source: 'default-curve', points };
}

/** Quality of (layers, dims) in `dtype`: its measured row, else the f32 point × DTYPE_RETENTION. */
export function qualityIn(table: QualityTable, p: QualityPoint, dtype: PlanDType): { quality: number; measured: boolean } {
  if (dtype === 'f32') return { quality: p.quality, measured: table.source === 'sidecar' };
  const row = table.byDtype?.[dtype]?.find((r) => r.layers === p.layers && r.dims === p.dims);
  return row ? { quality: row.quality, measured: true } : { quality: p.quality * DTYPE_RETENTION[dtype], measured: false };
}
