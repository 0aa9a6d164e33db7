/**
 * Synthetic XVERSE-architecture checkpoints with random weights, for benchmarks and the quality table.
 * Deterministic (a seed per tensor name) and fast: values come from a 65,536-entry table of samples of the
 * weight distribution, indexed by 16 random bits, so a billion weights take seconds, not minutes.
 *
 * The distribution is a Gaussian mixture — 99.5 % N(0, σ²), 0.5 % N(0, (6σ)²) — because real LLM weights have
 * outliers, and outliers are what separates per-row from group-wise int4; a pure Gaussian would flatter per-row.
 * σ follows GPT-2's initialisation (1/√fan_in, and the residual-branch outputs o_proj / down_proj scaled by
 * 1/√(2·layers)) so the random network is not chaotic: otherwise any perturbation, even bf16 rounding,
 * is amplified layer after layer and every precision looks equally broken.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { writeSafetensors, type TensorToWrite } from "../src/io/safetensors.js";
import { f32ToBf16, f32ToF16, type DType, type Tensor } from "../src/tensor.js";
import { exportGguf, TOKEN_TYPE, type ExportType, type GgufVocab } from "../src/gguf/export.js";
import { loadConfig } from "../src/config.js";
import { openCheckpoint } from "../src/io/checkpoint.js";

/** Bumped whenever the weights a spec produces change, so cached builds (keyed by specKey) are not reused. */
export const GENERATOR_VERSION = 2;

/** A directory-name key for a spec's cached build. */
export function specKey(s: SyntheticSpec): string {
  return `v${GENERATOR_VERSION}-${s.hidden}x${s.layers}x${s.heads}-${s.kvHeads}x${s.intermediate}x${s.vocab}-s${s.seed}`;
}

export interface SyntheticSpec {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  /** Max positions written to config.json. */
  context: number;
  seed: number;
}

/** The example: ~1.2 B parameters (0.81 B in the layers, 2 × 0.21 B embeddings / lm_head). */
export const BENCH_SPEC: SyntheticSpec = { hidden: 2048, layers: 16, heads: 16, kvHeads: 16, intermediate: 5504, vocab: 100534, context: 4096, seed: 1 };
/** ~0.2 B parameters (0.4 GB in f16): past every cache, so decode is still bandwidth-bound, at a sixth of the work. */
export const MEDIUM_SPEC: SyntheticSpec = { hidden: 1024, layers: 8, heads: 8, kvHeads: 8, intermediate: 2816, vocab: 32000, context: 2048, seed: 3 };
/** `--quick`: the same shape family, small enough for a smoke run. */
export const QUICK_SPEC: SyntheticSpec = { hidden: 512, layers: 4, heads: 8, kvHeads: 8, intermediate: 1408, vocab: 32000, context: 2048, seed: 1 };

/** The specs by the names `--size` takes. */
export const SPECS: Record<"full" | "medium" | "quick", SyntheticSpec> = { full: BENCH_SPEC, medium: MEDIUM_SPEC, quick: QUICK_SPEC };

/** `--size` (full | medium | quick; `--quick` = quick, default full) → its spec. */
export function specBySize(size: string): SyntheticSpec {
  const spec = (SPECS as Record<string, SyntheticSpec>)[size];
  if (!spec) throw new Error(`--size must be full, medium or quick, got ${size}`);
  return spec;
}

/** Where a spec's builds are cached (the f16 checkpoint in <dir>/f16, GGUF exports beside it). */
export function syntheticDir(s: SyntheticSpec): string {
  return join(tmpdir(), `xverse-bench-${specKey(s)}`);
}

/**
 * <dir>/model-<type>.gguf exported from the f16 build in <dir>/f16 with the synthetic vocabulary (reused when
 * present: exportGguf writes atomically, so an existing file is complete). The same files bench/inference.ts uses.
 */
export function ensureSyntheticGguf(dir: string, type: ExportType, log?: (m: string) => void): string {
  const path = join(dir, `model-${type}.gguf`);
  if (existsSync(path)) return path;
  const cfg = loadConfig(join(dir, "f16"));
  const src = openCheckpoint(join(dir, "f16"));
  const t0 = performance.now();
  try {
    exportGguf(src, cfg, syntheticVocab(cfg.vocabSize), path, { type, name: "synthetic-xverse" });
  } finally {
    src.close();
  }
  log?.(`exported ${path} (${(statSync(path).size / 2 ** 30).toFixed(2)} GiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return path;
}

export function paramCount(s: SyntheticSpec): { layers: number; embed: number; total: number } {
  const hd = s.hidden / s.heads;
  const attn = s.hidden * s.hidden * 2 + 2 * s.hidden * s.kvHeads * hd;
  const layers = s.layers * (attn + 3 * s.hidden * s.intermediate + 2 * s.hidden);
  const embed = s.vocab * s.hidden;
  return { layers, embed, total: layers + 2 * embed + s.hidden };
}

export function describe(s: SyntheticSpec): string {
  const p = paramCount(s);
  return `hidden ${s.hidden}, ${s.layers} layers, ${s.heads} heads (kv ${s.kvHeads}), intermediate ${s.intermediate}, ` +
    `vocab ${s.vocab.toLocaleString("en-US")}: ${(p.total / 1e9).toFixed(2)} B parameters ` +
    `(${(p.layers / 1e9).toFixed(2)} B in the layers, ${(p.embed / 1e9).toFixed(2)} B each in embed_tokens and lm_head)`;
}

/** xorshift32 stream seeded from a string (FNV-1a), so every tensor is reproducible on its own. */
function rng(key: string): () => number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  let s = h >>> 0 || 1;
  return () => {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    return s >>> 0;
  };
}

/** Inverse-CDF samples of the mixture at 65,536 evenly spaced quantiles, shuffled by a fixed permutation. */
function sampleTable(sigma: number): Float32Array {
  const n = 65536;
  const t = new Float32Array(n);
  const next = rng("table");
  for (let i = 0; i < n; i++) {
    // Box–Muller on the deterministic stream; the 1 % outlier component gets 8σ.
    const u1 = (next() + 1) / 4294967297, u2 = next() / 4294967296;
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    t[i] = z * sigma * (next() % 200 === 0 ? 6 : 1);
  }
  return t;
}

const tables = new Map<number, Float32Array>();
function table(sigma: number): Float32Array {
  let t = tables.get(sigma);
  if (!t) tables.set(sigma, (t = sampleTable(sigma)));
  return t;
}

/** n random f32 values for tensor `name`. */
export function randomValues(name: string, n: number, sigma: number, seed: number): Float32Array {
  const t = table(sigma);
  return drawFrom(t, new Float32Array(n), rng(`${seed}:${name}`));
}

const encodedTables = new Map<string, Uint16Array>();

/**
 * n random values for tensor `name` already encoded as f16 / bf16 bits: the same values as randomValues, converted
 * through a converted copy of the table (one conversion per table entry instead of one per weight).
 */
export function randomEncoded(name: string, n: number, sigma: number, seed: number, dtype: "f16" | "bf16"): Uint16Array {
  const key = `${dtype}:${sigma}`;
  let t = encodedTables.get(key);
  if (!t) {
    const src = table(sigma);
    const conv = dtype === "f16" ? f32ToF16 : f32ToBf16;
    t = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) t[i] = conv(src[i]);
    encodedTables.set(key, t);
  }
  return drawFrom(t, new Uint16Array(n), rng(`${seed}:${name}`));
}

/** Fills out with table entries picked by two 16-bit halves of each 32-bit draw. */
function drawFrom<A extends Float32Array | Uint16Array>(t: A, out: A, next: () => number): A {
  const n = out.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    const r = next();
    out[i] = t[r & 0xffff];
    out[i + 1] = t[r >>> 16];
  }
  if (i < n) out[i] = t[next() & 0xffff];
  return out;
}

function ones(n: number, dtype: "f32" | "f16" | "bf16"): Tensor["data"] {
  if (dtype === "f32") return new Float32Array(n).fill(1);
  return new Uint16Array(n).fill(dtype === "f16" ? f32ToF16(1) : f32ToBf16(1));
}

/** HF tensor names and shapes of the spec, in checkpoint order, with each tensor's σ (0 = norm weights, all 1). */
export function tensorPlan(s: SyntheticSpec): { name: string; shape: number[]; sigma: number }[] {
  const hd = s.hidden / s.heads;
  // σ keeps activations O(1): 1/√fan_in for projections; the lm_head a little larger so next-token
  // distributions are peaked enough for KL divergences to mean something.
  const proj = (out: number, inp: number, name: string, residual = false) =>
    ({ name, shape: [out, inp], sigma: 1 / Math.sqrt(inp) / (residual ? Math.sqrt(2 * s.layers) : 1) });
  const plan = [{ name: "model.embed_tokens.weight", shape: [s.vocab, s.hidden], sigma: 1 }];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}.`;
    plan.push(
      { name: p + "input_layernorm.weight", shape: [s.hidden], sigma: 0 },
      proj(s.heads * hd, s.hidden, p + "self_attn.q_proj.weight"),
      proj(s.kvHeads * hd, s.hidden, p + "self_attn.k_proj.weight"),
      proj(s.kvHeads * hd, s.hidden, p + "self_attn.v_proj.weight"),
      proj(s.hidden, s.heads * hd, p + "self_attn.o_proj.weight", true),
      { name: p + "post_attention_layernorm.weight", shape: [s.hidden], sigma: 0 },
      proj(s.intermediate, s.hidden, p + "mlp.gate_proj.weight"),
      proj(s.intermediate, s.hidden, p + "mlp.up_proj.weight"),
      proj(s.hidden, s.intermediate, p + "mlp.down_proj.weight", true),
    );
  }
  plan.push({ name: "model.norm.weight", shape: [s.hidden], sigma: 0 }, { name: "lm_head.weight", shape: [s.vocab, s.hidden], sigma: 4 / Math.sqrt(s.hidden) });
  return plan;
}

export function configJson(s: SyntheticSpec, dtype: string): Record<string, unknown> {
  return {
    architectures: ["XverseForCausalLM"], model_type: "xverse", hidden_act: "silu",
    hidden_size: s.hidden, intermediate_size: s.intermediate, num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads, num_hidden_layers: s.layers, max_position_embeddings: s.context,
    rms_norm_eps: 1e-6, vocab_size: s.vocab, tie_word_embeddings: false, pad_token_id: 1, bos_token_id: 2,
    eos_token_id: 3, torch_dtype: { f32: "float32", f16: "float16", bf16: "bfloat16" }[dtype] ?? dtype,
  };
}

/**
 * Writes config.json + model.safetensors for the spec into `dir` (created; reused when a previous build of the
 * same spec and dtype completed — the `.complete` marker is written last).
 */
export function buildSyntheticModel(dir: string, s: SyntheticSpec, dtype: "f32" | "f16" | "bf16", log?: (m: string) => void): string {
  const marker = join(dir, ".complete");
  if (existsSync(marker)) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  const t0 = Date.now();
  try {
    const plan: TensorToWrite[] = tensorPlan(s).map(({ name, shape, sigma }) => ({
      name, dtype: dtype as DType, shape,
      load: (): Tensor => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = sigma === 0 ? ones(n, dtype)
          : dtype === "f32" ? randomValues(name, n, sigma, s.seed) : randomEncoded(name, n, sigma, s.seed, dtype);
        return { dtype, shape, data };
      },
    }));
    writeSafetensors(join(tmp, "model.safetensors"), plan, { format: "pt", generator: `xverse-ts bench/synthetic seed ${s.seed}` });
    writeFileSync(join(tmp, "config.json"), JSON.stringify(configJson(s, dtype), null, 2) + "\n");
    writeFileSync(join(tmp, "generation_config.json"), JSON.stringify({ bos_token_id: 2, eos_token_id: 3, pad_token_id: 1 }) + "\n");
    writeFileSync(join(tmp, ".complete"), "");
    renameSync(tmp, dir);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  log?.(`built ${dir} (${dtype}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return dir;
}

/**
 * A vocabulary llama.cpp accepts for a synthetic model: the XVERSE special tokens at 0–5, the 256 byte tokens,
 * then "tok{i}" filler. Benchmarks feed token ids directly, so the strings never matter.
 */
export function syntheticVocab(vocab: number): GgufVocab {
  const tokens: string[] = [], scores: number[] = [], types: number[] = [];
  const special = ["<sep>", "<pad>", "<|startoftext|>", "<|endoftext|>", "<|endofprompt|>", "<|endofknowledge|>"];
  for (let id = 0; id < vocab; id++) {
    if (id < special.length) { tokens.push(special[id]); scores.push(0); types.push(TOKEN_TYPE.CONTROL); }
    else if (id < special.length + 256) {
      tokens.push(`<0x${(id - special.length).toString(16).toUpperCase().padStart(2, "0")}>`);
      scores.push(0); types.push(TOKEN_TYPE.BYTE);
    } else { tokens.push(`▁tok${id}`); scores.push(-id); types.push(TOKEN_TYPE.NORMAL); }
  }
  return { tokens, scores, types, bos: 2, eos: 3, pad: 1, unk: null, addBos: false, addEos: false };
}

/** A deterministic token sequence (ids ≥ 262: never special or byte tokens). */
export function syntheticTokens(n: number, vocab: number, seed = 7): number[] {
  const next = rng(`tokens:${seed}`);
  return Array.from({ length: n }, () => 262 + (next() % (vocab - 262)));
}
