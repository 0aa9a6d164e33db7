/**
 * Causal softmax attention with GQA and a key padding mask, forward and backward, as dense per-head products
 * through the row·row kernel (the causal half is computed and masked: 2× the work of a triangular loop, still
 * several times faster in V8).
 */
import { Tape, Var } from "./autograd-ops.js";
import { matmulNT, transpose } from "./kernels.js";

export interface AttnShape {
  B: number;
  T: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** (B·T) 1 = real token, 0 = padding; padded keys get no attention. null = no padding. */
  keyMask: Uint8Array | null;
}

/** Head h of row b out of a (B·T, W) activation as a contiguous (T, hd) block. */
function gather(src: Float64Array, b: number, T: number, W: number, col: number, hd: number): Float64Array {
  const o = new Float64Array(T * hd);
  for (let i = 0; i < T; i++) {
    const so = (b * T + i) * W + col;
    for (let d = 0; d < hd; d++) o[i * hd + d] = src[so + d];
  }
  return o;
}

/** dst[(b, head)] += block (T, hd). */
function scatterAdd(dst: Float64Array, blk: Float64Array, b: number, T: number, W: number, col: number, hd: number): void {
  for (let i = 0; i < T; i++) {
    const so = (b * T + i) * W + col;
    for (let d = 0; d < hd; d++) dst[so + d] += blk[i * hd + d];
  }
}

/**
 * Causal softmax attention with GQA (query head h reads kv head h / (nHeads/nKvHeads)) and a key padding mask.
 * q (B·T, nHeads·hd), k and v (B·T, nKvHeads·hd) → (B·T, nHeads·hd). Keeps P (B, nHeads, T, T) for backward.
 * A query with no visible key (a left pad at position 0) outputs zeros.
 */
export function attention(t: Tape, q: Var, k: Var, v: Var, s: AttnShape): Var {
  const { B, T, nHeads: H, nKvHeads: KH, headDim: hd, keyMask } = s;
  const group = H / KH, QW = H * hd, KW = KH * hd, scale = 1 / Math.sqrt(hd);
  const qd = q.data as Float64Array, kd = k.data as Float64Array, vd = v.data as Float64Array;
  const y = new Var(new Float64Array(B * T * QW), q.requiresGrad || k.requiresGrad || v.requiresGrad);
  const P = new Float64Array(B * H * T * T);
  for (let b = 0; b < B; b++) {
    for (let kh = 0; kh < KH; kh++) {
      const K = gather(kd, b, T, KW, kh * hd, hd); // (T, hd)
      const Vt = transpose(gather(vd, b, T, KW, kh * hd, hd), T, hd); // (hd, T)
      for (let h = kh * group; h < (kh + 1) * group; h++) {
        const Pb = P.subarray((b * H + h) * T * T, (b * H + h + 1) * T * T); // (T, T)
        matmulNT(gather(qd, b, T, QW, h * hd, hd), K, T, hd, T, Pb, T, 0, false); // scores q·k
        for (let i = 0; i < T; i++) {
          const r = i * T;
          let mx = -Infinity;
          for (let j = 0; j <= i; j++) {
            if (keyMask && !keyMask[b * T + j]) continue;
            const sc = Pb[r + j] * scale;
            Pb[r + j] = sc;
            if (sc > mx) mx = sc;
          }
          let sum = 0;
          for (let j = 0; j < T; j++) {
            if (j > i || mx === -Infinity || (keyMask && !keyMask[b * T + j])) { Pb[r + j] = 0; continue; }
            const e = Math.exp(Pb[r + j] - mx);
            Pb[r + j] = e;
            sum += e;
          }
          if (sum > 0) for (let j = 0; j <= i; j++) Pb[r + j] /= sum;
        }
        const O = new Float64Array(T * hd);
        matmulNT(Pb, Vt, T, T, hd, O, hd, 0, false); // P · V
        scatterAdd(y.data as Float64Array, O, b, T, QW, h * hd, hd);
      }
    }
  }
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    const gy = y.grad as Float64Array;
    const gq = q.requiresGrad ? (q.g() as Float64Array) : null;
    const gk = k.requiresGrad ? (k.g() as Float64Array) : null;
    const gv = v.requiresGrad ? (v.g() as Float64Array) : null;
    for (let b = 0; b < B; b++) {
      for (let kh = 0; kh < KH; kh++) {
        const K = gather(kd, b, T, KW, kh * hd, hd), V = gather(vd, b, T, KW, kh * hd, hd);
        const Kt = transpose(K, T, hd);
        const dK = new Float64Array(T * hd), dV = new Float64Array(T * hd);
        for (let h = kh * group; h < (kh + 1) * group; h++) {
          const Pb = P.subarray((b * H + h) * T * T, (b * H + h + 1) * T * T);
          const dO = gather(gy, b, T, QW, h * hd, hd); // (T, hd)
          // dV = Pᵀ dO
          if (gv) matmulNT(transpose(Pb, T, T), transpose(dO, T, hd), T, T, hd, dV, hd, 0, true);
          // dP = dO Vᵀ ; dS = P ⊙ (dP − Σ_j P dP) · scale
          const dS = new Float64Array(T * T);
          matmulNT(dO, V, T, hd, T, dS, T, 0, false);
          for (let i = 0; i < T; i++) {
            const r = i * T;
            let dot = 0;
            for (let j = 0; j <= i; j++) dot += Pb[r + j] * dS[r + j];
            for (let j = 0; j < T; j++) dS[r + j] = j <= i ? Pb[r + j] * (dS[r + j] - dot) * scale : 0;
          }
          if (gq) {
            const dQ = new Float64Array(T * hd);
            matmulNT(dS, Kt, T, T, hd, dQ, hd, 0, false); // dS K
            scatterAdd(gq, dQ, b, T, QW, h * hd, hd);
          }
          if (gk) matmulNT(transpose(dS, T, T), transpose(gather(qd, b, T, QW, h * hd, hd), T, hd), T, T, hd, dK, hd, 0, true); // dSᵀ Q
        }
        if (gk) scatterAdd(gk, dK, b, T, KW, kh * hd, hd);
        if (gv) scatterAdd(gv, dV, b, T, KW, kh * hd, hd);
      }
    }
  });
  return y;
}
