/** What the playground and the planner need to know about a WebGPU adapter. */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  description: string;
  isFallbackAdapter: boolean;
  features: string[];
  shaderF16: boolean;
  limits: Record<string, number>;
}

const LIMIT_KEYS = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupsPerDimension'] as const;

export function describeAdapter(adapter: GPUAdapter): AdapterReport {
  const info = adapter.info;
  const limits: Record<string, number> = {};
  for (const k of LIMIT_KEYS) limits[k] = Number(adapter.limits[k]);
  const features = [...adapter.features].map(String).sort();
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    description: info?.description ?? '',
    // isFallbackAdapter moved from GPUAdapter to GPUAdapterInfo; read whichever this browser has.
    isFallbackAdapter: Boolean((info as unknown as { isFallbackAdapter?: boolean })?.isFallbackAdapter ?? (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    features,
    shaderF16: features.includes('shader-f16'),
    limits,
  };
}

/** navigator.gpu → adapter, or null with the reason (no WebGPU in this context, or no adapter granted). */
export async function requestAdapter(gpu: GPU | undefined = (globalThis.navigator as Navigator | undefined)?.gpu): Promise<{ adapter: GPUAdapter } | { adapter: null; reason: string }> {
  if (!gpu) return { adapter: null, reason: 'navigator.gpu is undefined: this browser or context has no WebGPU' };
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { adapter: null, reason: 'requestAdapter() returned null: WebGPU is disabled or blocklisted for this GPU' };
  return { adapter };
}
