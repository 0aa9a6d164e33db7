/**
 * x as the int8-activation kernels see it (VNNI legacy blocks, q4 VNNI / AVX2, AMX): int8 per block of 32 columns
 * with d = amax / 127 and q = x · (127 / amax) rounded half to even (both in f32), back to f32 as q · d.
 * References built on this isolate a kernel's integer arithmetic from the (intended) activation rounding.
 */

/** Round half to even, as nearbyint / vcvtps2dq do under the default MXCSR (Math.round rounds half up). */
export function rint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** x (T, cols) quantize-dequantized per 32 columns; a last partial block is quantized over its own columns. */
export function quantizeActsQ8_0(x: Float32Array, T: number, cols: number): Float32Array {
  const fr = Math.fround;
  const out = new Float32Array(x.length);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < cols; b += 32) {
      const o = t * cols + b, n = Math.min(32, cols - b);
      let amax = 0;
      for (let i = 0; i < n; i++) amax = Math.max(amax, Math.abs(x[o + i]));
      const d = fr(amax / 127), id = amax >= 1e-30 ? fr(127 / amax) : 0; // tinier blocks quantize to 0 (127 / amax could overflow)
      for (let i = 0; i < n; i++) out[o + i] = fr(rint(fr(x[o + i] * id)) * d);
    }
  }
  return out;
}

/**
 * Whether AVX2 (no VNNI) runs int8 row weights on Q8_0-style activations: decode through q8_0's decode plan, prompts of
 * 4 tokens or more through its int16 rows-as-lanes kernel (blocks_avx2.cc); 2-3 tokens stay exact.
 */
export function avx2Q8RowsTakes(cols: number, T: number): boolean {
  return (T >= 4 || T === 1) && cols % 32 === 0;
}

/**
 * Whether the AVX2 (no VNNI) prompt path takes an int weight through the packed f32 GEMM instead of int8
 * activations (native/src/group_f32_avx2.cc, addon.cc): T ≥ 10 tokens, q4 / q8 rows or groups of whole 32-column
 * units (a row format's group is its cols), but not int4 group 32 (from 4 tokens) and int8 rows (avx2Q8RowsTakes),
 * which take the GGUF q4_0 / q8_0 kernels.
 */
export function avx2GemmTakes(format: string, cols: number, group: number | undefined, T: number): boolean {
  // int4 group 32 from 4 tokens runs the q4_0 rows-as-lanes kernel instead (q4g32_rows_avx2: int8 activations)
  if (format === "q4_group" && group === 32 && T >= 4) return false;
  if (format === "q8_row" && avx2Q8RowsTakes(cols, T)) return false;
  const g = format.endsWith("_row") ? cols : group ?? 0;
  return T >= 10 && (format.startsWith("q4") || format.startsWith("q8")) && g > 0 && g % 32 === 0 && cols % g === 0;
}
