/**
 * Test-side GPTQ / AWQ writers, from the format description in test/fixtures/golden/README.md alone (no code
 * shared with src/io/gptq.ts): quantize a float [N, K] matrix asymmetrically per group, pack the words, and give
 * the dequantized f32 matrix the packed tensors stand for (the oracle).
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors } from "../../src/io/safetensors.js";
import { f16ToF32, f32ToF16, type Tensor } from "../../src/tensor.js";

export interface Packed {
  tensors: Record<string, Tensor>;
  /** What the tensors mean, W[n, k] = scale · (q − zero), in f32: [N, K] row-major. */
  dequant: Float32Array;
}

export interface PackOptions {
  bits: 4 | 8;
  /** Columns per group, or a rule from K (e.g. 32 where it divides K, else 16). */
  group: number | ((K: number) => number);
  sym: boolean;
  /** GPTQ act-order: a g_idx that is not monotonic in k. */
  descAct: boolean;
  r: () => number;
  /** Round every scale up to a power of two, so −scale·zero is an f16 (what an exact Q4_1 copy needs). */
  pow2Scales?: boolean;
}

/** A GPTQ v1 projection (qweight / qzeros stored zero − 1 / scales / g_idx) from W [N, K]. */
export function packGptq(w: Float32Array, N: number, K: number, o: PackOptions): Packed {
  const { bits } = o;
  const group = typeof o.group === "number" ? o.group : o.group(K);
  const ng = K / group, maxq = (1 << bits) - 1, perWord = 32 / bits;
  // group of input column k: act-order visits columns in a random order and cuts that order into groups
  const order = Int32Array.from({ length: K }, (_, i) => i);
  if (o.descAct) {
    for (let i = K - 1; i > 0; i--) {
      const j = Math.floor(o.r() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
  }
  const gIdx = new Int32Array(K);
  for (let i = 0; i < K; i++) gIdx[order[i]] = Math.floor(i / group);
  const scale16 = new Uint16Array(ng * N);
  const zero = new Int32Array(ng * N);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < ng; g++) {
      let lo = 0, hi = 0;
      for (let k = 0; k < K; k++) if (gIdx[k] === g) { lo = Math.min(lo, w[n * K + k]); hi = Math.max(hi, w[n * K + k]); }
      let s: number, z: number;
      if (o.sym) {
        const amax = Math.max(-lo, hi);
        s = (2 * amax) / maxq || 1e-4;
        z = (maxq + 1) / 2;
      } else {
        s = (hi - lo) / maxq || 1e-4;
        // v1 stores zero − 1, so zero 0 would wrap to a stored maxq and read back as maxq + 1 (AutoGPTQ v1's known
        // quirk); keep zeros in 1 … maxq, which v1 represents exactly
        z = Math.min(maxq, Math.max(1, Math.round(-lo / s)));
      }
      scale16[g * N + n] = f32ToF16(o.pow2Scales ? 2 ** Math.ceil(Math.log2(s)) : s);
      zero[g * N + n] = z;
    }
  }
  const q = new Int32Array(K * N); // q[k, n]
  const dequant = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const g = gIdx[k];
      const s = f16ToF32(scale16[g * N + n]);
      const u = Math.min(maxq, Math.max(0, Math.round(w[n * K + k] / s) + zero[g * N + n]));
      q[k * N + n] = u;
      dequant[n * K + k] = s * (u - zero[g * N + n]);
    }
  }
  const qweight = new Int32Array((K / perWord) * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) qweight[Math.floor(k / perWord) * N + n] |= q[k * N + n] << (bits * (k % perWord));
  const qzeros = new Int32Array(ng * (N / perWord));
  for (let g = 0; g < ng; g++) for (let n = 0; n < N; n++) {
    qzeros[g * (N / perWord) + Math.floor(n / perWord)] |= ((zero[g * N + n] - 1) & maxq) << (bits * (n % perWord));
  }
  return {
    tensors: {
      qweight: { dtype: "i32", shape: [K / perWord, N], data: qweight },
      qzeros: { dtype: "i32", shape: [ng, N / perWord], data: qzeros },
      scales: { dtype: "f16", shape: [ng, N], data: scale16 },
      g_idx: { dtype: "i32", shape: [K], data: gIdx },
    },
    dequant,
  };
}

/** The tiny-xverse f32 checkpoint with its seven projections replaced by GPTQ tensors, as a model directory. */
export function writeGptqModel(
  tinyDir: string, src: { names(): string[]; read(n: string): Tensor }, o: PackOptions, quantConfig: Record<string, unknown>,
  configOverride: Record<string, unknown> = {},
): { dir: string; denseDir: string } {
  const dir = mkdtempSync(join(tmpdir(), "xv-gptq-"));
  const denseDir = mkdtempSync(join(tmpdir(), "xv-gptq-dense-"));
  const out: Array<{ name: string; tensor: Tensor }> = [];
  const dense: Array<{ name: string; tensor: Tensor }> = [];
  for (const name of src.names()) {
    const t = src.read(name);
    const m = /^(model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj)\.weight$/.exec(name);
    if (!m) {
      out.push({ name, tensor: t });
      dense.push({ name, tensor: t });
      continue;
    }
    const [N, K] = t.shape;
    const p = packGptq(t.data as Float32Array, N, K, o);
    for (const [k, v] of Object.entries(p.tensors)) out.push({ name: `${m[1]}.${k}`, tensor: v });
    dense.push({ name, tensor: { dtype: "f32", shape: [N, K], data: p.dequant } });
  }
  for (const d of [dir, denseDir]) {
    for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"]) {
      cpSync(join(tinyDir, f), join(d, f));
    }
  }
  const config = { ...JSON.parse(readFileSync(join(tinyDir, "config.json"), "utf8")), ...configOverride };
  writeFileSync(join(denseDir, "config.json"), JSON.stringify(config));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, quantization_config: quantConfig }));
  writeSafetensors(join(dir, "model.safetensors"), out);
  writeSafetensors(join(denseDir, "model.safetensors"), dense);
  return { dir, denseDir };
}


/** An in-memory f32 XVERSE model of another shape (uniform weights ±0.1, norms in [0.5, 1.5)), as tensors. */
export function randomF32Model(shape: { hidden: number; heads: number; intermediate: number; layers: number; vocab: number }, r: () => number) {
  const t: Record<string, Tensor> = {};
  const mat = (rows: number, cols: number): Tensor =>
    ({ dtype: "f32", shape: [rows, cols], data: Float32Array.from({ length: rows * cols }, () => (r() * 2 - 1) * 0.1) });
  const vec = (n: number): Tensor => ({ dtype: "f32", shape: [n], data: Float32Array.from({ length: n }, () => 0.5 + r()) });
  const { hidden: H, intermediate: I } = shape;
  t["model.embed_tokens.weight"] = mat(shape.vocab, H);
  for (let l = 0; l < shape.layers; l++) {
    const p = `model.layers.${l}.`;
    t[p + "input_layernorm.weight"] = vec(H);
    for (const s of ["q", "k", "v", "o"]) t[`${p}self_attn.${s}_proj.weight`] = mat(H, H);
    t[p + "post_attention_layernorm.weight"] = vec(H);
    t[p + "mlp.gate_proj.weight"] = mat(I, H);
    t[p + "mlp.up_proj.weight"] = mat(I, H);
    t[p + "mlp.down_proj.weight"] = mat(H, I);
  }
  t["model.norm.weight"] = vec(H);
  t["lm_head.weight"] = mat(shape.vocab, H);
  const config = { hidden_size: H, num_attention_heads: shape.heads, intermediate_size: I, num_hidden_layers: shape.layers, vocab_size: shape.vocab };
  return { source: { names: () => Object.keys(t), read: (n: string) => t[n] }, config };
}
