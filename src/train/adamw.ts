/**
 * torch.optim.AdamW (single-tensor path) and torch.nn.utils.clip_grad_norm_, step for step:
 *   p ← p·(1 − lr·wd);  m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + eps)
 * State is kept in the parameter's precision (f32 for f32 master weights, like PyTorch); math is in double.
 */
import type { Arr, Var } from "./autograd-ops.js";

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Which tensors get weight decay (default: all, as torch.optim.AdamW over one param group). */
  decays?: (name: string) => boolean;
}

export interface AdamWState {
  step: number;
  m: Arr;
  v: Arr;
}

export class AdamW {
  lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  readonly decays: (name: string) => boolean;
  /** Per trainable tensor name. */
  readonly state = new Map<string, AdamWState>();

  constructor(o: AdamWOptions) {
    this.lr = o.lr;
    [this.beta1, this.beta2] = o.betas ?? [0.9, 0.999];
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0.01;
    this.decays = o.decays ?? (() => true);
  }

  /** One update of every named tensor that has a gradient (PyTorch skips params whose grad is None). */
  step(params: [string, Var][]): void {
    const { beta1: b1, beta2: b2, eps, lr } = this;
    for (const [name, p] of params) {
      const g = p.grad;
      if (!g) continue;
      let s = this.state.get(name);
      if (!s) {
        const mk = (): Arr => (p.data instanceof Float32Array ? new Float32Array(p.data.length) : new Float64Array(p.data.length));
        s = { step: 0, m: mk(), v: mk() };
        this.state.set(name, s);
      }
      s.step++;
      const bc1 = 1 - b1 ** s.step, bc2s = Math.sqrt(1 - b2 ** s.step);
      const stepSize = lr / bc1, decay = this.decays(name) ? 1 - lr * this.weightDecay : 1;
      const x = p.data, m = s.m, v = s.v;
      for (let i = 0; i < x.length; i++) {
        const gi = g[i];
        x[i] *= decay;
        m[i] = m[i] * b1 + gi * (1 - b1);
        v[i] = v[i] * b2 + (1 - b2) * gi * gi;
        x[i] -= (stepSize * m[i]) / (Math.sqrt(v[i]) / bc2s + eps);
      }
    }
  }
}

/** The L2 norm over all gradients together (norm of the per-tensor norms, as clip_grad_norm_ computes it). */
export function gradNorm(params: [string, Var][]): number {
  let ss = 0;
  for (const [, p] of params) {
    const g = p.grad;
    if (!g) continue;
    for (let i = 0; i < g.length; i++) ss += g[i] * g[i];
  }
  return Math.sqrt(ss);
}

/**
 * clip_grad_norm_: scales every gradient by min(1, maxNorm / (total + 1e-6)) and returns the pre-clip total norm.
 * maxNorm ≤ 0 or Infinity only measures.
 */
export function clipGradNorm(params: [string, Var][], maxNorm: number): number {
  const total = gradNorm(params);
  if (!(maxNorm > 0) || maxNorm === Infinity) return total;
  const coef = Math.min(1, maxNorm / (total + 1e-6));
  if (coef < 1) {
    for (const [, p] of params) {
      const g = p.grad;
      if (!g) continue;
      for (let i = 0; i < g.length; i++) g[i] *= coef;
    }
  }
  return total;
}
