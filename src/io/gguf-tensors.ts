/**
 * A GGUF file's header and tensor bytes as our model's inputs, with no file access (Node's gguf-model.ts and the
 * browser loader share it): the config.json-style object from the metadata, and one tensor decoded — dequantized
 * to f32 (or f16), F16/BF16 kept as stored, q/k rows permuted back from llama.cpp's adjacent-pair RoPE layout to
 * HF rotate-half.
 */
import { XverseError } from "../errors.js";
import { f32ToF16, type DType, type Tensor } from "../tensor.js";
import { GGML } from "../gguf/types.js";
import { DEQUANTIZABLE, dequantize } from "../gguf/quants.js";
import { ggufToHf, permuteRopeRows, ropeRole } from "../gguf/names.js";
import { alignedView } from "./aligned.js";
import type { GgufFile, GgufTensorInfo } from "./gguf-parse.js";

const ARCHES = ["xverse", "llama"];

function metaNum(file: GgufFile, key: string, required: boolean): number | undefined {
  const v = file.metadata[key];
  if (v === undefined) {
    if (required) throw new XverseError("bad_gguf", `${file.path}: metadata "${key}" is missing; llama.cpp needs it too, so the file is incomplete — re-convert it`);
    return undefined;
  }
  if (typeof v !== "number") throw new XverseError("bad_gguf", `${file.path}: metadata "${key}" must be a number, got ${typeof v === "bigint" ? v.toString() : JSON.stringify(v)}`);
  return v;
}

/** Builds the config.json-style object from `{arch}.*` and `tokenizer.ggml.*` metadata. */
/** `tensors`: all tensor infos (of every part, for a split model). */
export function ggufConfig(file: GgufFile, tensors: GgufTensorInfo[] = file.tensors): Record<string, unknown> {
  const arch = file.metadata["general.architecture"];
  if (typeof arch !== "string") throw new XverseError("bad_gguf", `${file.path}: metadata "general.architecture" is missing`);
  if (!ARCHES.includes(arch)) {
    throw new XverseError("unsupported", `${file.path}: architecture "${arch}" is not supported (this engine runs "xverse" and "llama" GGUF files)`);
  }
  const k = (s: string) => `${arch}.${s}`;
  const hidden = metaNum(file, k("embedding_length"), true)!;
  const heads = metaNum(file, k("attention.head_count"), true)!;
  const tokens = file.metadata["tokenizer.ggml.tokens"];
  const embd = tensors.find((t) => t.name === "token_embd.weight");
  const vocab = metaNum(file, k("vocab_size"), false) ?? (Array.isArray(tokens) ? tokens.length : embd?.shape[0]);
  if (vocab === undefined) throw new XverseError("bad_gguf", `${file.path}: cannot tell the vocabulary size (no ${k("vocab_size")}, token list or token_embd.weight)`);

  const cfg: Record<string, unknown> = {
    model_type: arch === "xverse" ? "xverse" : "llama",
    architectures: [arch === "xverse" ? "XverseForCausalLM" : "LlamaForCausalLM"],
    hidden_act: "silu",
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: metaNum(file, k("feed_forward_length"), true),
    num_hidden_layers: metaNum(file, k("block_count"), true),
    num_attention_heads: heads,
    num_key_value_heads: metaNum(file, k("attention.head_count_kv"), false) ?? heads,
    max_position_embeddings: metaNum(file, k("context_length"), true),
    rms_norm_eps: metaNum(file, k("attention.layer_norm_rms_epsilon"), true),
    rope_theta: metaNum(file, k("rope.freq_base"), false) ?? 10000,
    tie_word_embeddings: !tensors.some((t) => t.name === "output.weight"),
  };
  const keyLen = metaNum(file, k("attention.key_length"), false) ?? metaNum(file, k("rope.dimension_count"), false);
  if (keyLen !== undefined && keyLen !== hidden / heads) cfg.head_dim = keyLen;

  // Rope scaling: `{arch}.rope.scaling.type` ("none" | "linear" | "yarn" …) + `.factor`; older files use
  // `{arch}.rope.scale_linear`. Types we cannot run are passed on so parseConfig rejects them by name.
  const sType = file.metadata[k("rope.scaling.type")];
  const sFactor = metaNum(file, k("rope.scaling.factor"), false) ?? metaNum(file, k("rope.scale_linear"), false);
  if (typeof sType === "string" && sType !== "none") cfg.rope_scaling = { type: sType, factor: sFactor ?? 1 };
  else if (sType === undefined && sFactor !== undefined && sFactor !== 1) cfg.rope_scaling = { type: "linear", factor: sFactor };

  const id = (name: string) => metaNum(file, `tokenizer.ggml.${name}_token_id`, false);
  if (id("bos") !== undefined) cfg.bos_token_id = id("bos");
  if (id("eos") !== undefined) cfg.eos_token_id = id("eos");
  if (id("padding") !== undefined) cfg.pad_token_id = id("padding");
  return cfg;
}

function toF16(x: Float32Array): Uint16Array {
  const h = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) h[i] = f32ToF16(x[i]);
  return h;
}

/** F32 stays f32; F16/BF16 stay as stored; block types become f32 or (floatType f16) f16. */
export function ggufDtype(t: GgufTensorInfo, floatType: "f32" | "f16" = "f32"): DType {
  return t.type === GGML.F16 ? "f16" : t.type === GGML.BF16 ? "bf16" : t.type === GGML.F32 || floatType !== "f16" ? "f32" : "f16";
}

export interface DecodeOptions {
  /** The file, for errors. */
  path: string;
  /** num_attention_heads and num_key_value_heads: how q and k rows split for the RoPE permutation. */
  heads: number;
  kvHeads: number;
  floatType?: "f32" | "f16";
}

/**
 * One GGUF tensor under its HF name as the model takes it. `bytes` is called only once the type is known to be
 * supported; F32/F16/BF16 data stays a view of those bytes unless the rows had to be re-ordered.
 */
export function decodeGgufTensor(name: string, t: GgufTensorInfo, bytes: () => Uint8Array, o: DecodeOptions): Tensor {
  if (!DEQUANTIZABLE.has(t.type)) {
    throw new XverseError("unsupported", `${o.path}: tensor "${t.name}" is ${t.typeName}, which this engine cannot dequantize (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)`);
  }
  const dtype = ggufDtype(t, o.floatType);
  const raw = bytes();
  let data: Float32Array | Uint16Array;
  if (t.type === GGML.F16 || t.type === GGML.BF16 || t.type === GGML.F32) {
    // stored as we keep it: a view into the mapping (or the one buffer it was read into)
    data = alignedView(raw, t.type === GGML.F32 ? "f32" : "u16");
  } else {
    const f = dequantize(t.type, raw, t.nelements);
    data = dtype === "f16" ? toF16(f) : f;
  }
  const role = ropeRole(name);
  if (role) {
    const n = role === "q" ? o.heads : o.kvHeads;
    if (t.shape.length !== 2 || t.shape[0] % (2 * n) !== 0) {
      throw new XverseError("bad_checkpoint", `${o.path}: tensor "${t.name}" has shape [${t.shape}], which does not split into ${n} heads`);
    }
    data = permuteRopeRows(data, n, t.shape[1], false);
  }
  return { dtype, shape: [...t.shape], data };
}

/** Every tensor of the file (or its split parts) under its HF name; a tied file's embedding doubles as lm_head. */
export function ggufHfNames(parts: readonly GgufFile[]): Map<string, { file: GgufFile; info: GgufTensorInfo }> {
  const byHf = new Map<string, { file: GgufFile; info: GgufTensorInfo }>();
  for (const part of parts) {
    for (const t of part.tensors) {
      const hf = ggufToHf(t.name);
      if (hf === null) {
        // rope_freqs (llama 3.1 rope scaling) and biases change the math: refuse rather than run a different model.
        throw new XverseError("unsupported", `${part.path}: tensor "${t.name}" is not part of the XVERSE/LLaMA layout this engine runs`);
      }
      if (byHf.has(hf)) throw new XverseError("bad_gguf", `${part.path}: tensor "${t.name}" is also in ${byHf.get(hf)!.file.path}`);
      byHf.set(hf, { file: part, info: t });
    }
  }
  // Tied (llama) files have no output.weight: llama.cpp then uses the embedding as the output matrix.
  const embd = byHf.get("model.embed_tokens.weight");
  if (!byHf.has("lm_head.weight") && embd) byHf.set("lm_head.weight", embd);
  return byHf;
}
