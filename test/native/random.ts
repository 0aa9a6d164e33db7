/** Seeded random inputs for the native parity tests (no test cases here). */
import type { Weight, WeightFormat } from "../../src/backend/backend.js";
import { f32ToBf16, f32ToF16 } from "../../src/tensor.js";
import { rng } from "../helpers/rng.js";
import { BLOCK_GEOMETRY, type BlockFormat } from "../../src/backend/ts/blocks.js";

export { rng };

/** Uniform in [-1, 1), with a few larger outliers like real activations. */
export function randArray(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale * (r() < 0.01 ? 8 : 1);
  return a;
}

export function randWeight(format: WeightFormat, rows: number, cols: number, r: () => number, groupSize = 32): Weight {
  const n = rows * cols;
  switch (format) {
    case "f32":
      return { format, rows, cols, data: randArray(n, r, 0.1) };
    case "bf16":
    case "f16": {
      const src = randArray(n, r, 0.1);
      const data = new Uint16Array(n);
      for (let i = 0; i < n; i++) data[i] = format === "bf16" ? f32ToBf16(src[i]) : f32ToF16(src[i]);
      return { format, rows, cols, data };
    }
    case "q8_row": {
      const data = new Int8Array(n);
      for (let i = 0; i < n; i++) data[i] = Math.floor(r() * 255) - 127;
      return { format, rows, cols, data, scales: randArray(rows, r, 0.01).map(Math.abs) };
    }
    case "q8_group": {
      const data = new Int8Array(n);
      for (let i = 0; i < n; i++) data[i] = Math.floor(r() * 256) - 128;
      return { format, rows, cols, data, scales: randArray(n / groupSize, r, 0.002).map(Math.abs), groupSize };
    }
    case "q4_row":
    case "q4_group": {
      // any byte: both nibbles cover the full int4 range [-8, 7]
      const data = new Uint8Array(n / 2);
      for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256);
      const ns = format === "q4_row" ? rows : n / groupSize;
      const scales = randArray(ns, r, 0.02).map(Math.abs);
      return format === "q4_row"
        ? { format, rows, cols, data, scales }
        : { format, rows, cols, data, scales, groupSize };
    }
    default:
      return randBlockWeight(format, rows, cols, r);
  }
}

/**
 * Random GGUF blocks: random bytes for every quant / scale field (all bit patterns are valid), with the f16
 * scales replaced by sane values (|d| ≈ 0.001 … 0.01, either sign) so no block is Inf / NaN.
 */
export function randBlockWeight(format: BlockFormat, rows: number, cols: number, r: () => number): Weight {
  const { values, bytes, f16 } = BLOCK_GEOMETRY[format];
  const nb = (rows * cols) / values;
  const data = new Uint8Array(nb * bytes);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(r() * 256);
  for (let b = 0; b < nb; b++) {
    for (const o of f16) {
      const h = f32ToF16((r() < 0.5 ? -1 : 1) * (0.001 + r() * 0.009));
      data[b * bytes + o] = h & 255;
      data[b * bytes + o + 1] = h >> 8;
    }
  }
  return { format, rows, cols, data };
}

/** max|a − b| / max|b|: the normalized error the parity bounds are stated in. */
export function normErr(got: Float32Array, ref: Float32Array): number {
  let md = 0;
  let mr = 0;
  for (let i = 0; i < ref.length; i++) {
    md = Math.max(md, Math.abs(got[i] - ref[i]));
    mr = Math.max(mr, Math.abs(ref[i]));
  }
  if (Number.isNaN(md)) return Infinity;
  return mr === 0 ? md : md / mr;
}

/** A seeded random permutation of 0 … n − 1 (Fisher–Yates): a GPTQ desc_act column order. */
export function randPerm(n: number, r: () => number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
