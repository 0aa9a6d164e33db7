/**
 * The TypeScript reference backend: portable, allocation-free per call, and the spec every native kernel
 * is tested against.
 */
import type { Backend, Weight } from "../backend.js";
import { kvWriteRef, pagedAttentionRef } from "./kv.js";
import { matmulRef, decodeRow } from "./matmul.js";
import { checkBlockWeight, isBlockFormat } from "./blocks.js";
import { XverseError } from "../../errors.js";

export { decodeRow } from "./matmul.js";

export const tsBackend: Backend = {
  name: "ts",

  prepareWeight(w: Weight): Weight {
    if (isBlockFormat(w.format)) checkBlockWeight(w);
    return w;
  },

  embedRow(out: Float32Array, w: Weight, row: number): void {
    embedRowRef(out, w, row);
  },

  matmul(y: Float32Array, x: Float32Array, w: Weight, T: number): void {
    matmulRef(y, x, w, T);
  },

  rmsnorm(y, x, weight, T, dim, eps) {
    for (let t = 0; t < T; t++) {
      const o = t * dim;
      let ss = 0;
      for (let i = 0; i < dim; i++) ss += x[o + i] * x[o + i];
      const inv = 1 / Math.sqrt(ss / dim + eps);
      for (let i = 0; i < dim; i++) y[o + i] = x[o + i] * inv * weight[i];
    }
  },

  rope(x, T, nHeads, headDim, cos, sin) {
    const half = headDim >> 1;
    for (let t = 0; t < T; t++) {
      const c = t * half;
      for (let h = 0; h < nHeads; h++) {
        const o = (t * nHeads + h) * headDim;
        for (let i = 0; i < half; i++) {
          const a = x[o + i];
          const b = x[o + half + i];
          x[o + i] = a * cos[c + i] - b * sin[c + i];
          x[o + half + i] = b * cos[c + i] + a * sin[c + i];
        }
      }
    }
  },

  kvWrite: kvWriteRef,
  attention: pagedAttentionRef,

  siluMul(gate, up, n) {
    for (let i = 0; i < n; i++) {
      const g = gate[i];
      gate[i] = (g / (1 + Math.exp(-g))) * up[i];
    }
  },

  addInPlace(y, x, n) {
    for (let i = 0; i < n; i++) y[i] += x[i];
  },
};

/** Row `row` of w into out[0 … w.cols): the embedding lookup every backend may share. */
export function embedRowRef(out: Float32Array, w: Weight, row: number): void {
  if (!(Number.isInteger(row) && row >= 0 && row < w.rows)) {
    throw new XverseError("bad_token", `embedRow: row ${row} is outside the table's ${w.rows} rows`);
  }
  if (out.length < w.cols) throw new XverseError("bad_argument", `embedRow: output holds ${out.length} values, the row has ${w.cols}`);
  decodeRow(w, row, out);
}
