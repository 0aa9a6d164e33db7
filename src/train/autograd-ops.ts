/**
 * Reverse-mode autodiff for the XVERSE (LLaMA) forward pass: a tape of backward closures over typed arrays.
 *
 * Every op computes its output now and, when recording, pushes a closure that turns the output's gradient into
 * gradients of its inputs (accumulated with +=, so a value used twice gets both contributions). Tensors are flat
 * row-major arrays; an "(N, D)" comment means N rows of D. Activations are Float64Array (JS arithmetic is double
 * anyway, and it keeps training bit-close to PyTorch's f32 math); parameters may be Float32Array (f32 master
 * weights) or Float64Array (finite-difference checks).
 */
import type { Rng } from "./rng.js";

export type Arr = Float32Array | Float64Array;

export class Var {
  data: Arr;
  grad: Arr | null = null;
  requiresGrad: boolean;
  constructor(data: Arr, requiresGrad = false) {
    this.data = data;
    this.requiresGrad = requiresGrad;
  }
  /** The gradient buffer, allocated (zeros, same precision as data) on first use. */
  g(): Arr {
    if (!this.grad) this.grad = this.data instanceof Float32Array ? new Float32Array(this.data.length) : new Float64Array(this.data.length);
    return this.grad;
  }
}

export class Tape {
  private fns: (() => void)[] = [];
  /** A tape with record=false runs ops forward only (evaluation, or the first pass of a recomputed layer). */
  constructor(readonly record = true) {}
  push(fn: () => void): void {
    if (this.record) this.fns.push(fn);
  }
  /** Seeds d(loss)/d(loss) = 1 and runs the closures newest first; the tape is empty afterwards. */
  backward(loss: Var, seed = 1): void {
    if (loss.data.length !== 1) throw new Error("backward: loss must be a scalar");
    loss.g()[0] += seed;
    this.run();
  }
  /** Runs the closures assuming the output gradients are already set. */
  run(): void {
    for (let i = this.fns.length - 1; i >= 0; i--) this.fns[i]();
    this.fns = [];
  }
}

function out(n: number, ...inputs: Var[]): Var {
  return new Var(new Float64Array(n), inputs.some((v) => v.requiresGrad));
}

/** Embedding lookup. W (V, D), ids (N) → (N, D). */
export function embedding(t: Tape, W: Var, ids: Int32Array, D: number): Var {
  const N = ids.length;
  const y = out(N * D, W);
  const w = W.data, yd = y.data;
  for (let n = 0; n < N; n++) {
    const o = ids[n] * D;
    for (let d = 0; d < D; d++) yd[n * D + d] = w[o + d];
  }
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    const gw = W.g(), gy = y.grad;
    for (let n = 0; n < N; n++) {
      const o = ids[n] * D;
      for (let d = 0; d < D; d++) gw[o + d] += gy[n * D + d];
    }
  });
  return y;
}

/** RMSNorm: y = w ⊙ x / sqrt(mean(x²) + eps). x (N, D), w (D). */
export function rmsnorm(t: Tape, x: Var, w: Var, D: number, eps: number): Var {
  const N = x.data.length / D;
  const y = out(N * D, x, w);
  const xd = x.data, wd = w.data, yd = y.data;
  const rs = new Float64Array(N); // 1/rms per row, kept for backward
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += xd[n * D + d] * xd[n * D + d];
    const r = 1 / Math.sqrt(ss / D + eps);
    rs[n] = r;
    for (let d = 0; d < D; d++) yd[n * D + d] = wd[d] * xd[n * D + d] * r;
  }
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    const gy = y.grad;
    const gw = w.requiresGrad ? w.g() : null;
    const gx = x.requiresGrad ? x.g() : null;
    for (let n = 0; n < N; n++) {
      const r = rs[n], o = n * D;
      // with xhat = x·r: dxhat = gy·w, dx = r·(dxhat − xhat·mean(dxhat·xhat))
      let dot = 0;
      for (let d = 0; d < D; d++) {
        const xh = xd[o + d] * r;
        if (gw) gw[d] += gy[o + d] * xh;
        dot += gy[o + d] * wd[d] * xh;
      }
      if (gx) {
        const m = dot / D;
        for (let d = 0; d < D; d++) gx[o + d] += r * (gy[o + d] * wd[d] - xd[o + d] * r * m);
      }
    }
  });
  return y;
}

/** y = x Wᵀ (no bias anywhere in XVERSE). x (N, In), W (Out, In) → (N, Out). */
export function linear(t: Tape, x: Var, W: Var, In: number, Out: number): Var {
  const N = x.data.length / In;
  const xd = f64(x.data);
  const y = new Var(new Float64Array(N * Out), x.requiresGrad || W.requiresGrad);
  // W is walked in blocks of output rows widened to f64, so no full-size copy of a big weight (lm_head) is made
  const BO = blockRows(In);
  for (let o0 = 0; o0 < Out; o0 += BO) {
    const o1 = Math.min(Out, o0 + BO);
    matmulNT(xd, widenRows(W.data, o0, o1, In, false), N, In, o1 - o0, y.data as Float64Array, Out, o0, false);
  }
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    // Both gradients are "row · row" products after a transpose, so they reuse the same kernel:
    // gW[o] (In) = Σ_n gy[n, o] x[n]  = rows of gyᵀ (Out, N) · rows of xᵀ (In, N)
    // gx[n] (In) = Σ_o gy[n, o] W[o]  = rows of gy (N, Out) · rows of Wᵀ (In, Out)
    const gyT = transpose(f64(y.grad), N, Out);
    const xT = W.requiresGrad ? transpose(xd, N, In) : null;
    const gx = x.requiresGrad ? new Float64Array(N * In) : null;
    for (let o0 = 0; o0 < Out; o0 += BO) {
      const o1 = Math.min(Out, o0 + BO), bo = o1 - o0;
      const gyTb = gyT.subarray(o0 * N, o1 * N); // (bo, N)
      if (xT) {
        const gwb = new Float64Array(bo * In);
        matmulNT(gyTb, xT, bo, N, In, gwb, In, 0, false);
        const gw = W.g();
        for (let i = 0; i < gwb.length; i++) gw[o0 * In + i] += gwb[i];
      }
      if (gx) matmulNT(transpose(gyTb, bo, N), widenRows(W.data, o0, o1, In, true), N, bo, In, gx, In, 0, true);
    }
    if (gx) addInto(x.g(), gx);
  });
  return y;
}

/** Output rows per block: about 1 MiB of f64 weights. */
function blockRows(In: number): number {
  return Math.max(4, Math.floor(131072 / In / 4) * 4);
}

/** The kernel only ever sees Float64Array, so V8 keeps its element loads monomorphic. */
function f64(a: Arr): Float64Array {
  return a instanceof Float64Array ? a : Float64Array.from(a);
}

/** Rows r0…r1−1 of W (·, C) as f64: (r1−r0, C), or transposed (C, r1−r0). */
function widenRows(w: Arr, r0: number, r1: number, C: number, transposed: boolean): Float64Array {
  const R = r1 - r0, o = new Float64Array(R * C);
  if (!transposed) {
    for (let i = 0; i < R * C; i++) o[i] = w[r0 * C + i];
  } else {
    for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) o[c * R + r] = w[(r0 + r) * C + c];
  }
  return o;
}

function addInto(dst: Arr, src: Float64Array): void {
  for (let i = 0; i < src.length; i++) dst[i] += src[i];
}

/** (R, C) → (C, R), in double. */
function transpose(a: Arr, R: number, C: number): Float64Array {
  const o = new Float64Array(R * C);
  for (let r = 0; r < R; r++) for (let c = 0; c < C; c++) o[c * R + r] = a[r * C + c];
  return o;
}

/**
 * out[m, off + n] (=, or += with acc) Σ_k a[m, k] · b[n, k] for a (M, K), b (N, K), out rows of length ld: every
 * entry a dot product of two contiguous rows, unrolled 2 rows × 4 columns so each load feeds several
 * multiply-adds (about 3× the plain triple loop in V8). Sums run over k in order.
 */
function matmulNT(a: Float64Array, b: Float64Array, M: number, K: number, N: number, out: Float64Array, ld: number, off: number, acc: boolean): void {
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

/**
 * cos/sin tables for rotate-half RoPE: (N, headDim/2) for the given positions, angle = pos · base^(−2i/headDim).
 * `posScale` is 1/factor for linear scaling.
 */
export function ropeTables(positions: Int32Array, headDim: number, base: number, posScale = 1): { cos: Float64Array; sin: Float64Array } {
  const half = headDim / 2, N = positions.length;
  const cos = new Float64Array(N * half), sin = new Float64Array(N * half);
  // inv_freq in f32, as Hugging Face builds it (base ** (arange(0, d, 2).float() / d)), then double from there.
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.fround(base ** ((2 * i) / headDim));
  for (let n = 0; n < N; n++) {
    const p = positions[n] * posScale;
    for (let i = 0; i < half; i++) {
      const a = Math.fround(p * inv[i]);
      cos[n * half + i] = Math.cos(a);
      sin[n * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/** Rotate-half RoPE on every head. x (N, nHeads·headDim); tables (N, headDim/2). */
export function rope(t: Tape, x: Var, nHeads: number, headDim: number, tab: { cos: Float64Array; sin: Float64Array }): Var {
  const half = headDim / 2, W = nHeads * headDim, N = x.data.length / W;
  const y = out(N * W, x);
  const xd = x.data, yd = y.data, { cos, sin } = tab;
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < nHeads; h++) {
      const o = n * W + h * headDim;
      for (let i = 0; i < half; i++) {
        const c = cos[n * half + i], s = sin[n * half + i];
        const a = xd[o + i], b = xd[o + i + half];
        yd[o + i] = a * c - b * s;
        yd[o + i + half] = b * c + a * s;
      }
    }
  }
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    const gy = y.grad, gx = x.g();
    // The rotation is orthogonal: backward applies its transpose (rotation by −angle).
    for (let n = 0; n < N; n++) {
      for (let h = 0; h < nHeads; h++) {
        const o = n * W + h * headDim;
        for (let i = 0; i < half; i++) {
          const c = cos[n * half + i], s = sin[n * half + i];
          const ga = gy[o + i], gb = gy[o + i + half];
          gx[o + i] += ga * c + gb * s;
          gx[o + i + half] += gb * c - ga * s;
        }
      }
    }
  });
  return y;
}

export interface AttnShape {
  B: number;
  T: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** (B·T) 1 = real token, 0 = padding; padded keys get no attention. null = no padding. */
  keyMask: Uint8Array | null;
}

/**
 * Causal softmax attention with GQA (query head h reads kv head h / (nHeads/nKvHeads)) and a key padding mask.
 * q (B·T, nHeads·hd), k and v (B·T, nKvHeads·hd) → (B·T, nHeads·hd). Keeps P (B, nHeads, T, T) for backward.
 * A query with no visible key (a left pad at position 0) outputs zeros.
 */
export function attention(t: Tape, q: Var, k: Var, v: Var, s: AttnShape): Var {
  const { B, T, nHeads: H, nKvHeads: KH, headDim: hd, keyMask } = s;
  const group = H / KH, QW = H * hd, KW = KH * hd, scale = 1 / Math.sqrt(hd);
  const y = out(B * T * QW, q, k, v);
  const qd = q.data, kd = k.data, vd = v.data, yd = y.data;
  const P = new Float64Array(B * H * T * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      for (let i = 0; i < T; i++) {
        const qo = (b * T + i) * QW + h * hd;
        const po = ((b * H + h) * T + i) * T;
        let mx = -Infinity;
        for (let j = 0; j <= i; j++) {
          if (keyMask && !keyMask[b * T + j]) continue;
          const ko = (b * T + j) * KW + kh * hd;
          let sc = 0;
          for (let d = 0; d < hd; d++) sc += qd[qo + d] * kd[ko + d];
          sc *= scale;
          P[po + j] = sc;
          if (sc > mx) mx = sc;
        }
        if (mx === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j <= i; j++) {
          if (keyMask && !keyMask[b * T + j]) continue;
          const e = Math.exp(P[po + j] - mx);
          P[po + j] = e;
          sum += e;
        }
        const inv = 1 / sum;
        for (let j = 0; j <= i; j++) {
          if (keyMask && !keyMask[b * T + j]) { P[po + j] = 0; continue; }
          const p = (P[po + j] *= inv);
          const vo = (b * T + j) * KW + kh * hd;
          for (let d = 0; d < hd; d++) yd[qo + d] += p * vd[vo + d];
        }
      }
    }
  }
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    const gy = y.grad;
    const gq = q.requiresGrad ? q.g() : null, gk = k.requiresGrad ? k.g() : null, gv = v.requiresGrad ? v.g() : null;
    const dP = new Float64Array(T);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const kh = Math.floor(h / group);
        for (let i = 0; i < T; i++) {
          const qo = (b * T + i) * QW + h * hd;
          const po = ((b * H + h) * T + i) * T;
          // dP_j = dO·v_j ; dS_j = P_j (dP_j − Σ P dP)
          let dot = 0;
          for (let j = 0; j <= i; j++) {
            const p = P[po + j];
            if (p === 0) { dP[j] = 0; continue; }
            const vo = (b * T + j) * KW + kh * hd;
            let s2 = 0;
            for (let d = 0; d < hd; d++) {
              s2 += gy[qo + d] * vd[vo + d];
              if (gv) gv[vo + d] += p * gy[qo + d];
            }
            dP[j] = s2;
            dot += p * s2;
          }
          for (let j = 0; j <= i; j++) {
            const p = P[po + j];
            if (p === 0) continue;
            const ds = p * (dP[j] - dot) * scale;
            const ko = (b * T + j) * KW + kh * hd;
            for (let d = 0; d < hd; d++) {
              if (gq) gq[qo + d] += ds * kd[ko + d];
              if (gk) gk[ko + d] += ds * qd[qo + d];
            }
          }
        }
      }
    }
  });
  return y;
}

/** SwiGLU's gate: silu(g) ⊙ u. g, u (N, I). */
export function swiglu(t: Tape, g: Var, u: Var): Var {
  const n = g.data.length;
  const y = out(n, g, u);
  const gd = g.data, ud = u.data, yd = y.data;
  for (let i = 0; i < n; i++) yd[i] = (gd[i] / (1 + Math.exp(-gd[i]))) * ud[i];
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    const gy = y.grad;
    const gg = g.requiresGrad ? g.g() : null, gu = u.requiresGrad ? u.g() : null;
    for (let i = 0; i < n; i++) {
      const x = gd[i], sg = 1 / (1 + Math.exp(-x));
      if (gu) gu[i] += gy[i] * x * sg;
      if (gg) gg[i] += gy[i] * ud[i] * sg * (1 + x * (1 - sg));
    }
  });
  return y;
}

/** Elementwise a + b (residual connections). */
export function add(t: Tape, a: Var, b: Var): Var {
  const n = a.data.length;
  const y = out(n, a, b);
  const ad = a.data, bd = b.data, yd = y.data;
  for (let i = 0; i < n; i++) yd[i] = ad[i] + bd[i];
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    const gy = y.grad;
    for (const x of [a, b]) {
      if (!x.requiresGrad) continue;
      const gx = x.g();
      for (let i = 0; i < n; i++) gx[i] += gy[i];
    }
  });
  return y;
}

/** x · c. */
export function scale(t: Tape, x: Var, c: number): Var {
  const n = x.data.length;
  const y = out(n, x);
  for (let i = 0; i < n; i++) y.data[i] = x.data[i] * c;
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    const gx = x.g(), gy = y.grad;
    for (let i = 0; i < n; i++) gx[i] += gy[i] * c;
  });
  return y;
}

/** Inverted dropout (zero with probability p, scale the rest by 1/(1−p)), as torch.nn.Dropout in training. */
export function dropout(t: Tape, x: Var, p: number, rng: Rng): Var {
  if (p <= 0) return x;
  const n = x.data.length, keep = 1 / (1 - p);
  const m = new Float64Array(n);
  for (let i = 0; i < n; i++) m[i] = rng.next() < p ? 0 : keep;
  const y = out(n, x);
  for (let i = 0; i < n; i++) y.data[i] = x.data[i] * m[i];
  if (y.requiresGrad) t.push(() => {
    if (!y.grad) return;
    const gx = x.g(), gy = y.grad;
    for (let i = 0; i < n; i++) gx[i] += gy[i] * m[i];
  });
  return y;
}

/**
 * Mean cross-entropy over rows whose target is not `ignoreIndex` (PyTorch's F.cross_entropy(ignore_index=−100),
 * reduction "mean"). logits (N, V), targets (N) → scalar. With no counted row the loss is 0 (PyTorch gives NaN),
 * so an all-prompt micro-batch contributes nothing instead of poisoning the step.
 */
export function crossEntropy(t: Tape, logits: Var, targets: Int32Array, V: number, ignoreIndex = -100): { loss: Var; count: number } {
  const N = targets.length;
  const ld = logits.data;
  const y = out(1, logits);
  let count = 0, total = 0;
  const lse = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    const tg = targets[n];
    if (tg === ignoreIndex) continue;
    if (tg < 0 || tg >= V) throw new RangeError(`crossEntropy: target ${tg} out of range [0, ${V})`);
    const o = n * V;
    let mx = -Infinity;
    for (let v = 0; v < V; v++) if (ld[o + v] > mx) mx = ld[o + v];
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(ld[o + v] - mx);
    lse[n] = mx + Math.log(s);
    total += lse[n] - ld[o + tg];
    count++;
  }
  y.data[0] = count ? total / count : 0;
  if (y.requiresGrad && count) t.push(() => {
    if (!y.grad) return;
    const g = y.grad[0] / count, gl = logits.g();
    for (let n = 0; n < N; n++) {
      const tg = targets[n];
      if (tg === ignoreIndex) continue;
      const o = n * V;
      for (let v = 0; v < V; v++) gl[o + v] += g * Math.exp(ld[o + v] - lse[n]);
      gl[o + tg] -= g;
    }
  });
  return { loss: y, count };
}

/**
 * Activation recomputation: runs `fn` without keeping its intermediates, and reruns it inside the backward pass
 * (with a fresh tape) to get them back. Parameters captured by `fn` receive their gradients during that rerun.
 * `rng`, if given, is rewound so the rerun draws the same dropout masks.
 */
export function checkpoint(t: Tape, x: Var, fn: (t: Tape, x: Var) => Var, rng?: Rng): Var {
  if (!t.record) return fn(t, x);
  const rngState = rng?.state;
  const y0 = fn(new Tape(false), x);
  const y = new Var(y0.data, true);
  t.push(() => {
    if (!y.grad) return;
    const after = rng?.state;
    if (rng && rngState !== undefined) rng.state = rngState;
    const t2 = new Tape(true);
    const x2 = new Var(x.data, x.requiresGrad);
    const y2 = fn(t2, x2);
    if (rng && after !== undefined) rng.state = after;
    y2.grad = y.grad;
    t2.run();
    if (x.requiresGrad && x2.grad) {
      const gx = x.g(), g2 = x2.grad;
      for (let i = 0; i < gx.length; i++) gx[i] += g2[i];
    }
  });
  return y;
}
