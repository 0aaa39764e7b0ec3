/**
 * Plain Float32 operators: the readable oracle every GPU kernel is compared with.
 * Sums run in JS doubles and are rounded to f32 on store, so these are at least as accurate
 * as an f32 GPU kernel. Layouts are row-major; linear weights are PyTorch's (out, in).
 */

/** y = x · Wᵀ + b.  x: (M, K), W: (N, K), b: (N) | null → (M, N). */
export function linear(x: Float32Array, M: number, K: number, W: Float32Array, N: number, b: Float32Array | null): Float32Array {
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++) {
    const xo = m * K;
    for (let n = 0; n < N; n++) {
      const wo = n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += x[xo + k] * W[wo + k];
      y[m * N + n] = b ? s + b[n] : s;
    }
  }
  return y;
}

/** LayerNorm over the last axis (Ba et al. 2016; torch.nn.LayerNorm, biased variance). x: (M, H). */
export function layerNorm(x: Float32Array, M: number, H: number, gamma: Float32Array | null, beta: Float32Array | null, eps: number): Float32Array {
  const y = new Float32Array(M * H);
  for (let m = 0; m < M; m++) {
    const o = m * H;
    let mean = 0;
    for (let i = 0; i < H; i++) mean += x[o + i];
    mean /= H;
    let v = 0;
    for (let i = 0; i < H; i++) v += (x[o + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / H + eps);
    for (let i = 0; i < H; i++) y[o + i] = (x[o + i] - mean) * inv * (gamma ? gamma[i] : 1) + (beta ? beta[i] : 0);
  }
  return y;
}

/** RMSNorm (Zhang & Sennrich 2019; LlamaRMSNorm: x * rsqrt(mean(x²) + eps) * w). x: (M, H). */
export function rmsNorm(x: Float32Array, M: number, H: number, w: Float32Array, eps: number): Float32Array {
  const y = new Float32Array(M * H);
  for (let m = 0; m < M; m++) {
    const o = m * H;
    let ss = 0;
    for (let i = 0; i < H; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / H + eps);
    for (let i = 0; i < H; i++) y[o + i] = x[o + i] * inv * w[i];
  }
  return y;
}

/** erf to double precision (JS has no Math.erf): Maclaurin series near 0, continued fraction for the tail. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // Maclaurin series: erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)); converges fast for |x| < 2.5.
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 60; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // Continued fraction for erfc (Numerical Recipes / Lentz), accurate for |x| >= 2.5.
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

/** GELU, erf form (Hendrycks & Gimpel 2016), as BERT's hidden_act "gelu". */
export function gelu(v: number): number {
  return 0.5 * v * (1 + erf(v / Math.SQRT2));
}
/** GELU, tanh approximation ("gelu_new" / "gelu_pytorch_tanh"). */
export function geluTanh(v: number): number {
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
}
export function silu(v: number): number {
  return v / (1 + Math.exp(-v));
}
export function relu(v: number): number {
  return v > 0 ? v : 0;
}

/**
 * Multi-head self-attention core for one batch (Vaswani et al. 2017, eq. 1), bidirectional, with a
 * key padding mask: softmax(q kᵀ / √d + mask) v, softmax in the running-max form.
 * q, k, v: (B, T, H) with heads interleaved as (nh, d) in H; mask: (B, T) of 0/1 → (B, T, H).
 */
export function attention(q: Float32Array, k: Float32Array, v: Float32Array, mask: Uint8Array, B: number, T: number, H: number, nh: number): Float32Array {
  const d = H / nh;
  const scale = 1 / Math.sqrt(d);
  const out = new Float32Array(B * T * H);
  const scores = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < nh; h++) {
      for (let i = 0; i < T; i++) {
        const qo = (b * T + i) * H + h * d;
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          if (!mask[b * T + j]) {
            scores[j] = -Infinity;
            continue;
          }
          const ko = (b * T + j) * H + h * d;
          let s = 0;
          for (let c = 0; c < d; c++) s += q[qo + c] * k[ko + c];
          s *= scale;
          scores[j] = s;
          if (s > max) max = s;
        }
        let denom = 0;
        for (let j = 0; j < T; j++) {
          const e = scores[j] === -Infinity ? 0 : Math.exp(scores[j] - max);
          scores[j] = e;
          denom += e;
        }
        const oo = (b * T + i) * H + h * d;
        for (let c = 0; c < d; c++) {
          let s = 0;
          for (let j = 0; j < T; j++) if (scores[j] !== 0) s += scores[j] * v[(b * T + j) * H + h * d + c];
          out[oo + c] = denom > 0 ? s / denom : 0;
        }
      }
    }
  }
  return out;
}

export function addInPlace(a: Float32Array, b: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] += b[i];
  return a;
}

export function mapInPlace(a: Float32Array, f: (v: number) => number): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = f(a[i]);
  return a;
}

/** L2 normalisation of each row; a zero row stays zero (torch F.normalize clamps the norm at eps 1e-12). */
export function l2Normalize(x: Float32Array, M: number, D: number): Float32Array {
  const y = new Float32Array(M * D);
  for (let m = 0; m < M; m++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[m * D + i] ** 2;
    const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
    for (let i = 0; i < D; i++) y[m * D + i] = x[m * D + i] * inv;
  }
  return y;
}
