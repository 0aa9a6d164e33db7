/**
 * The XVERSE forward pass (LLaMA architecture), in paper order:
 *   embed → L × (RMSNorm → attention (RoPE, GQA, causal) → residual → RMSNorm → SwiGLU → residual) → RMSNorm → lm_head
 * Activations are f32; weights are whatever the backend Weight holds (f32, bf16, f16, int8, int4).
 * Scratch buffers are allocated once for the largest (batch × tokens) seen, so decoding allocates nothing.
 */
import type { Backend } from "../backend/backend.js";
import { decodeRow } from "../backend/ts/index.js";
import type { XverseConfig } from "../config.js";
import { XverseError } from "../errors.js";
import type { TensorSource } from "../io/source.js";
import { KVCache } from "./kv-cache.js";
import { RopeTables } from "./rope.js";
import { loadWeights, type ModelWeights, type WeightLoadOptions } from "./weights.js";

export interface ForwardOptions {
  /** B: tokens is (B, T) row-major. Default 1. */
  batch?: number;
  /** (B, T) position ids. Default: past + t, or cumsum(attentionMask) − 1 when a mask is given. */
  positions?: Int32Array;
  /** (B, past + T): 0 marks a pad token (left padding). Default: all ones. */
  attentionMask?: Uint8Array;
  /** "last" (default): logits of each row's last token, (B, vocab). "all": (B·T, vocab). */
  logits?: "last" | "all";
  /** Write the logits here instead of a new array (the decode loop reuses one buffer). */
  out?: Float32Array;
}

class Scratch {
  n = 0;
  x = new Float32Array(0); // (N, hidden) residual stream
  xn = new Float32Array(0); // (N, hidden) normed
  q = new Float32Array(0); // (N, nHeads·headDim)
  k = new Float32Array(0); // (N, nKvHeads·headDim)
  v = new Float32Array(0);
  att = new Float32Array(0); // (N, nHeads·headDim)
  proj = new Float32Array(0); // (N, hidden)
  gate = new Float32Array(0); // (N, intermediate)
  up = new Float32Array(0);
  cos = new Float32Array(0); // (T, headDim/2)
  sin = new Float32Array(0);
  pos = new Int32Array(0); // (N)
  last = new Float32Array(0); // (B, hidden)

  ensure(c: XverseConfig, N: number): void {
    if (N <= this.n) return;
    const qd = c.numHeads * c.headDim, kvd = c.numKvHeads * c.headDim;
    this.n = N;
    this.x = new Float32Array(N * c.hiddenSize);
    this.xn = new Float32Array(N * c.hiddenSize);
    this.q = new Float32Array(N * qd);
    this.k = new Float32Array(N * kvd);
    this.v = new Float32Array(N * kvd);
    this.att = new Float32Array(N * qd);
    this.proj = new Float32Array(N * c.hiddenSize);
    this.gate = new Float32Array(N * c.intermediateSize);
    this.up = new Float32Array(N * c.intermediateSize);
    this.cos = new Float32Array(N * (c.headDim / 2));
    this.sin = new Float32Array(N * (c.headDim / 2));
    this.pos = new Int32Array(N);
    this.last = new Float32Array(N * c.hiddenSize);
  }
}

export class XverseModel {
  private readonly s = new Scratch();
  private readonly rope: RopeTables;

  constructor(
    readonly config: XverseConfig,
    readonly weights: ModelWeights,
    readonly backend: Backend,
  ) {
    this.rope = new RopeTables(config);
  }

  static fromSource(config: XverseConfig, source: TensorSource, opts: WeightLoadOptions): XverseModel {
    return new XverseModel(config, loadWeights(config, source, opts), opts.backend);
  }

  newCache(maxTokens: number, batch = 1): KVCache {
    const c = this.config;
    return new KVCache(c.numLayers, batch, maxTokens, c.numKvHeads, c.headDim);
  }

  forward(tokens: ArrayLike<number>, cache: KVCache, opts: ForwardOptions = {}): Float32Array {
    const c = this.config, be = this.backend, s = this.s;
    const B = opts.batch ?? 1;
    const N = tokens.length;
    const T = N / B;
    const past = cache.length;
    const S = past + T;
    if (!Number.isInteger(T) || T < 1) throw new XverseError("bad_argument", `forward: ${N} tokens do not split into a batch of ${B}`);
    if (cache.batch !== B) throw new XverseError("bad_argument", `forward: batch ${B} but the KV cache was made for ${cache.batch}`);
    if (S > cache.maxTokens) throw new XverseError("context_full", `forward: ${past} cached + ${T} new tokens exceed the KV cache's ${cache.maxTokens}`);
    const H = c.hiddenSize, hd = c.headDim, half = hd / 2;
    const qd = c.numHeads * hd, kvd = c.numKvHeads * hd;
    s.ensure(c, N);

    // key mask and positions: cumsum(mask) − 1, as HF generate() derives them for left-padded batches
    const km = cache.keyMask;
    for (let b = 0; b < B; b++) {
      for (let j = past; j < S; j++) {
        km[b * cache.maxTokens + j] = opts.attentionMask ? opts.attentionMask[b * S + j] : 1;
      }
      if (opts.positions) continue;
      let count = 0;
      for (let j = 0; j < past; j++) count += km[b * cache.maxTokens + j];
      for (let t = 0; t < T; t++) {
        const m = km[b * cache.maxTokens + past + t];
        count += m;
        s.pos[b * T + t] = m ? count - 1 : 1; // HF fills pad positions with 1
      }
    }
    const pos = opts.positions ?? s.pos;

    // embedding lookup: rows of the (vocab, hidden) table
    const row = s.x;
    for (let i = 0; i < N; i++) {
      const id = tokens[i];
      if (!(id >= 0 && id < c.vocabSize)) throw new XverseError("bad_token", `forward: token id ${id} is outside the vocabulary (0 … ${c.vocabSize - 1})`);
      decodeRow(this.weights.embed, id, row.subarray(i * H, (i + 1) * H));
    }

    const x = s.x, xn = s.xn;
    for (let l = 0; l < c.numLayers; l++) {
      const L = this.weights.layers[l];
      // --- attention block ---
      be.rmsnorm(xn, x, L.inputNorm, N, H, c.rmsNormEps);
      be.matmul(s.q, xn, L.q, N); // (N, nHeads·hd)
      be.matmul(s.k, xn, L.k, N); // (N, nKv·hd)
      be.matmul(s.v, xn, L.v, N);
      const kc = cache.k[l], vc = cache.v[l];
      for (let b = 0; b < B; b++) {
        this.rope.fill(s.cos, s.sin, pos, b * T, T, S);
        const qb = s.q.subarray(b * T * qd, (b + 1) * T * qd);
        const kb = s.k.subarray(b * T * kvd, (b + 1) * T * kvd);
        be.rope(qb, T, c.numHeads, hd, s.cos, s.sin);
        be.rope(kb, T, c.numKvHeads, hd, s.cos, s.sin);
        // append this row's keys/values at positions past … S−1 of its cache row
        const base = b * cache.rowStride + past * kvd;
        kc.set(kb, base);
        vc.set(s.v.subarray(b * T * kvd, (b + 1) * T * kvd), base);
        const rowK = kc.subarray(b * cache.rowStride, b * cache.rowStride + S * kvd);
        const rowV = vc.subarray(b * cache.rowStride, b * cache.rowStride + S * kvd);
        be.attention(s.att.subarray(b * T * qd, (b + 1) * T * qd), qb, rowK, rowV, {
          T, past, nHeads: c.numHeads, nKvHeads: c.numKvHeads, headDim: hd, scale: 1 / Math.sqrt(hd),
          keyMask: km.subarray(b * cache.maxTokens, b * cache.maxTokens + S),
        });
      }
      be.matmul(s.proj, s.att, L.o, N); // (N, hidden)
      be.addInPlace(x, s.proj, N * H);
      // --- SwiGLU block ---
      be.rmsnorm(xn, x, L.postNorm, N, H, c.rmsNormEps);
      be.matmul(s.gate, xn, L.gate, N); // (N, intermediate)
      be.matmul(s.up, xn, L.up, N);
      be.siluMul(s.gate, s.up, N * c.intermediateSize);
      be.matmul(s.proj, s.gate, L.down, N); // (N, hidden)
      be.addInPlace(x, s.proj, N * H);
    }
    cache.length = S;

    // final norm and the untied lm_head, for the last token of each row or for all tokens
    const V = c.vocabSize;
    if (opts.logits === "all") {
      be.rmsnorm(xn, x, this.weights.norm, N, H, c.rmsNormEps);
      const out = opts.out ?? new Float32Array(N * V);
      be.matmul(out, xn, this.weights.lmHead, N);
      return out;
    }
    for (let b = 0; b < B; b++) s.last.set(x.subarray(((b + 1) * T - 1) * H, (b + 1) * T * H), b * H);
    be.rmsnorm(xn, s.last, this.weights.norm, B, H, c.rmsNormEps);
    const out = opts.out ?? new Float32Array(B * V);
    be.matmul(out, xn, this.weights.lmHead, B);
    return out;
  }
}
