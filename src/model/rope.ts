/**
 * RoPE angle tables, rotate-half layout (HF LLaMA / XVERSE), with theta, linear scaling and dynamic NTK.
 * Computed with float32 rounding at the same steps as PyTorch so long positions agree with the reference.
 */
import type { XverseConfig } from "../config.js";

const f = Math.fround;

/** inv_freq[i] = 1 / base^(2i/d), i = 0 … d/2−1, in float32. */
export function invFreq(base: number, headDim: number): Float32Array {
  const half = headDim / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = f(1 / f(Math.pow(base, f((2 * i) / headDim))));
  return out;
}

/**
 * The base for a forward whose longest sequence is seqLen. Dynamic NTK (HF LlamaDynamicNTKScalingRotaryEmbedding):
 * past max_position_embeddings, base' = base · ((factor·L/M) − (factor − 1))^(d/(d−2)).
 */
export function effectiveBase(cfg: XverseConfig, seqLen: number): number {
  const s = cfg.ropeScaling;
  if (s?.type === "dynamic" && seqLen > cfg.maxPositionEmbeddings) {
    const d = cfg.headDim;
    return cfg.ropeTheta * Math.pow((s.factor * seqLen) / cfg.maxPositionEmbeddings - (s.factor - 1), d / (d - 2));
  }
  return cfg.ropeTheta;
}

/** Caches inv_freq per base and fills cos/sin (T, headDim/2) for given positions. */
export class RopeTables {
  private base = NaN;
  private inv: Float32Array = new Float32Array(0);

  constructor(private readonly cfg: XverseConfig) {}

  /** positions[off … off+T) → cos, sin (T, half). seqLen drives dynamic NTK. */
  fill(cos: Float32Array, sin: Float32Array, positions: ArrayLike<number>, off: number, T: number, seqLen: number): void {
    const base = effectiveBase(this.cfg, seqLen);
    if (base !== this.base) {
      this.base = base;
      this.inv = invFreq(base, this.cfg.headDim);
    }
    const half = this.cfg.headDim / 2;
    // linear scaling divides the position (HF: t = t / scaling_factor, float32)
    const lin = this.cfg.ropeScaling?.type === "linear" ? this.cfg.ropeScaling.factor : 1;
    for (let t = 0; t < T; t++) {
      const pos = lin === 1 ? positions[off + t] : f(positions[off + t] / lin);
      for (let i = 0; i < half; i++) {
        const angle = f(pos * this.inv[i]);
        cos[t * half + i] = Math.cos(angle);
        sin[t * half + i] = Math.sin(angle);
      }
    }
  }
}
