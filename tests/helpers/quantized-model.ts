import type { LoadedModel } from '../../src/model/load.ts';
import { isQuantizedWeight, quantizeWeight, type QuantBits, type QuantizedMatrix } from '../../src/model/quant.ts';

/**
 * A loaded f32 model as a pre-quantised folder loads (src/model/load.ts, src/model/QUANT.md): every isQuantizedWeight
 * matrix, encoder or head, quantised to its weightBits(name, bits) in memory and moved from `weights` / `heads` into `quantized`. Shared by
 * the CPU backend's quantised tests (src/cpu/quantized*.test.ts), which compare engines on exactly these matrices.
 */
export function quantizedModel(m: LoadedModel, bits: QuantBits): LoadedModel {
  const quantized = new Map<string, QuantizedMatrix>();
  const weights = new Map(m.weights);
  const heads = new Map(m.heads);
  for (const map of [weights, heads])
    for (const [name, t] of map) {
      if (!isQuantizedWeight(name)) continue;
      quantized.set(name, quantizeWeight(name, t, bits));
      map.delete(name);
    }
  return { ...m, weights, heads, quantized };
}
