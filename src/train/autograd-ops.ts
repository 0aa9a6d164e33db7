/**
 * Reverse-mode autodiff for the XVERSE (LLaMA) forward pass: a tape of backward closures over typed arrays.
 *
 * Every op computes its output now and, when recording, pushes a closure that turns the output's gradient into
 * gradients of its inputs (accumulated with +=, so a value used twice gets both contributions). Tensors are flat
 * row-major arrays; an "(N, D)" comment means N rows of D. Activations are Float64Array (JS arithmetic is double
 * anyway, and it keeps training bit-close to PyTorch's f32 math); parameters may be Float32Array (f32 master
 * weights) or Float64Array (finite-difference checks).
 */
import { addInto, blockRows, f64, matmulNT, transpose, widenRows } from "./kernels.js";
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

export { attention, type AttnShape } from "./attention-op.js";

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
