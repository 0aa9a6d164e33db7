/**
 * Dense kernels for training, all in double: one "row · row" product (out = a · bᵀ) that the linear layer's
 * forward and both gradients and attention's five products reduce to, plus the transposes that feed it.
 * Inputs are widened to Float64Array first so V8 keeps every element load in the hot loop monomorphic.
 */
import type { Arr } from "./autograd-ops.js";

/** Output rows per block: about 1 MiB of f64 weights. */
export function blockRows(In: number): number {
  return Math.max(4, Math.floor(131072 / In / 4) * 4);
}

/** The kernel only ever sees Float64Array, so V8 keeps its element loads monomorphic. */
export function f64(a: Arr): Float64Array {
  return a instanceof Float64Array ? a : Float64Array.from(a);
}

/** Rows r0…r1−1 of W (·, C) as f64: (r1−r0, C), or transposed (C, r1−r0). */
export function widenRows(w: Arr, r0: number, r1: number, C: number, transposed: boolean): Float64Array {
  const R = r1 - r0, o = new Float64Array(R * C);
  if (!transposed) {
    for (let i = 0; i < R * C; i++) o[i] = w[r0 * C + i];
  } else {
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) o[c * R + r] = w[(r0 + r) * C + c];
  }
  return o;
}

export function addInto(dst: Arr, src: Float64Array): void {
  for (let i = 0; i < src.length; i++) dst[i] += src[i];
}

/** (R, C) → (C, R), in double. */
export function transpose(a: Arr, R: number, C: number): Float64Array {
  const o = new Float64Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) o[c * R + r] = a[r * C + c];
  return o;
}

/**
 * out[m, off + n] (=, or += with acc) Σ_k a[m, k] · b[n, k] for a (M, K), b (N, K), out rows of length ld: every
 * entry a dot product of two contiguous rows, unrolled 2 rows × 4 columns so each load feeds several
 * multiply-adds (about 3× the plain triple loop in V8). Sums run over k in order.
 */
export function matmulNT(a: Float64Array, b: Float64Array, M: number, K: number, N: number, out: Float64Array, ld: number, off: number, acc: boolean): void {
  const put = (i: number, v: number): void => { if (acc) out[i] += v; else out[i] = v; };
  let m = 0;
  for (; m + 1 < M; m += 2) {
    const xa = m * K, xb = xa + K;
    let n = 0;
    for (; n + 3 < N; n += 4) {
      const w0 = n * K, w1 = w0 + K, w2 = w1 + K, w3 = w2 + K;
      let a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
      for (let k = 0; k < K; k++) {
        const u = a[xa + k], v = a[xb + k];
        const p0 = b[w0 + k], p1 = b[w1 + k], p2 = b[w2 + k], p3 = b[w3 + k];
        a0 += u * p0; a1 += u * p1; a2 += u * p2; a3 += u * p3;
        b0 += v * p0; b1 += v * p1; b2 += v * p2; b3 += v * p3;
      }
      const ya = m * ld + off + n, yb = ya + ld;
      put(ya, a0); put(ya + 1, a1); put(ya + 2, a2); put(ya + 3, a3);
      put(yb, b0); put(yb + 1, b1); put(yb + 2, b2); put(yb + 3, b3);
    }
    for (; n < N; n++) {
      const wo = n * K;
      let s0 = 0, s1 = 0;
      for (let k = 0; k < K; k++) { s0 += a[xa + k] * b[wo + k]; s1 += a[xb + k] * b[wo + k]; }
      put(m * ld + off + n, s0); put((m + 1) * ld + off + n, s1);
    }
  }
  for (; m < M; m++) {
    const xo = m * K;
    for (let n = 0; n < N; n++) {
      const wo = n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += a[xo + k] * b[wo + k];
      put(m * ld + off + n, s);
    }
  }
}

