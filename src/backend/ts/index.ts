/**
 * The TypeScript reference backend: portable, allocation-free per call, and the spec every native kernel
 * is tested against.
 */
import type { AttentionParams, Backend, Weight } from "../backend.js";
import { matmulRef } from "./matmul.js";

export { decodeRow } from "./matmul.js";

let scores = new Float32Array(0);

export const tsBackend: Backend = {
  name: "ts",

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

  attention(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, p: AttentionParams): void {
    const { T, past, nHeads, nKvHeads, headDim, scale, keyMask } = p;
    const S = past + T;
    if (scores.length < S) scores = new Float32Array(S);
    const group = nHeads / nKvHeads;
    const kvStride = nKvHeads * headDim;
    for (let t = 0; t < T; t++) {
      const last = past + t; // causal: keys 0 … last
      for (let h = 0; h < nHeads; h++) {
        const qo = (t * nHeads + h) * headDim;
        const kvh = Math.floor(h / group) * headDim;
        let max = -Infinity;
        for (let s = 0; s <= last; s++) {
          if (keyMask && keyMask[s] === 0) { scores[s] = -Infinity; continue; }
          const ko = s * kvStride + kvh;
          let d = 0;
          for (let i = 0; i < headDim; i++) d += q[qo + i] * k[ko + i];
          d *= scale;
          scores[s] = d;
          if (d > max) max = d;
        }
        const oo = qo;
        for (let i = 0; i < headDim; i++) out[oo + i] = 0;
        if (max === -Infinity) continue; // every key masked (a pad query): output zeros
        let sum = 0;
        for (let s = 0; s <= last; s++) {
          const e = scores[s] === -Infinity ? 0 : Math.exp(scores[s] - max);
          scores[s] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let s = 0; s <= last; s++) {
          const wgt = scores[s] * inv;
          if (wgt === 0) continue;
          const vo = s * kvStride + kvh;
          for (let i = 0; i < headDim; i++) out[oo + i] += wgt * v[vo + i];
        }
      }
    }
  },

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
