/**
 * Reference matmul y (T, rows) = x (T, cols) · Wᵀ for every Weight format.
 * Each weight row is decoded once into an f32 scratch row and reused for all T tokens, so prefill streams the
 * weight once; decode (T = 1) is a plain dot product per row.
 */
import type { Weight } from "../backend.js";
import { f16Table } from "../../tensor.js";
import { decodeBlockRow, isBlockFormat } from "./blocks.js";

let scratch = new Float32Array(0);
function scratchRow(n: number): Float32Array {
  if (scratch.length < n) scratch = new Float32Array(n);
  return scratch;
}

function dot(a: Float32Array, aOff: number, b: Float32Array, bOff: number, n: number): number {
  // four accumulators: shorter dependency chains, and the sum order the parity bounds assume
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let i = 0;
  for (; i + 3 < n; i += 4) {
    s0 += a[aOff + i] * b[bOff + i];
    s1 += a[aOff + i + 1] * b[bOff + i + 1];
    s2 += a[aOff + i + 2] * b[bOff + i + 2];
    s3 += a[aOff + i + 3] * b[bOff + i + 3];
  }
  for (; i < n; i++) s0 += a[aOff + i] * b[bOff + i];
  return s0 + s1 + s2 + s3;
}

let permScratch = new Float32Array(0);

/** Decodes row r of w into out[0 … cols), in input-column order (desc_act weights are un-permuted). */
export function decodeRow(w: Weight, r: number, out: Float32Array): void {
  if (isBlockFormat(w.format)) return decodeBlockRow(w, r, out);
  if (!w.perm) return decodeStored(w, r, out);
  if (permScratch.length < w.cols) permScratch = new Float32Array(w.cols);
  const stored = permScratch;
  decodeStored(w, r, stored);
  const perm = w.perm;
  for (let j = 0; j < w.cols; j++) out[perm[j]] = stored[j];
}

/** Row r in stored column order (the order of data, scales and mins). */
function decodeStored(w: Weight, r: number, out: Float32Array): void {
  const n = w.cols;
  const base = r * n;
  switch (w.format) {
    case "f32": {
      out.set((w.data as Float32Array).subarray(base, base + n));
      return;
    }
    case "bf16": {
      const src = w.data as Uint16Array;
      const o32 = new Uint32Array(out.buffer, out.byteOffset, n);
      for (let i = 0; i < n; i++) o32[i] = src[base + i] << 16;
      return;
    }
    case "f16": {
      const src = w.data as Uint16Array;
      const tab = f16Table();
      for (let i = 0; i < n; i++) out[i] = tab[src[base + i]];
      return;
    }
    case "q8_row": {
      const src = w.data as Int8Array;
      const s = w.scales![r];
      for (let i = 0; i < n; i++) out[i] = src[base + i] * s;
      return;
    }
    case "q4_row":
    case "q4_group": {
      const src = w.data as Uint8Array;
      const byteBase = base >> 1;
      const g = w.format === "q4_row" ? n : w.groupSize!;
      const scaleBase = w.format === "q4_row" ? r : (r * n) / g;
      const mins = w.format === "q4_group" ? w.mins : undefined;
      for (let i = 0; i < n; i += 2) {
        const b = src[byteBase + (i >> 1)];
        const lo = ((b & 0x0f) ^ 8) - 8; // sign-extend the nibble
        const hi = ((b >>> 4) ^ 8) - 8;
        const s0 = scaleBase + Math.floor(i / g);
        out[i] = mins ? lo * w.scales![s0] + mins[s0] : lo * w.scales![s0];
        if (i + 1 < n) {
          const s1 = scaleBase + Math.floor((i + 1) / g);
          out[i + 1] = mins ? hi * w.scales![s1] + mins[s1] : hi * w.scales![s1];
        }
      }
      return;
    }
    case "q8_group": {
      const src = w.data as Int8Array;
      const g = w.groupSize!;
      const scaleBase = (r * n) / g;
      for (let i = 0; i < n; i++) {
        const s = scaleBase + Math.floor(i / g);
        out[i] = w.mins ? src[base + i] * w.scales![s] + w.mins[s] : src[base + i] * w.scales![s];
      }
      return;
    }
  }
}

export function matmulRef(y: Float32Array, x: Float32Array, w: Weight, T: number): void {
  const { rows, cols } = w;
  if (w.format === "f32") {
    const W = w.data as Float32Array;
    for (let r = 0; r < rows; r++) {
      for (let t = 0; t < T; t++) y[t * rows + r] = dot(x, t * cols, W, r * cols, cols);
    }
    return;
  }
  const row = scratchRow(cols);
  for (let r = 0; r < rows; r++) {
    decodeRow(w, r, row);
    for (let t = 0; t < T; t++) y[t * rows + r] = dot(x, t * cols, row, 0, cols);
  }
}
