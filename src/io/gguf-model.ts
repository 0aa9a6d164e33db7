/**
 * A llama.cpp GGUF file (architecture `xverse` or `llama`) as our model's inputs: a config.json-style object
 * for parseConfig, a TensorSource with Hugging Face names, and the raw metadata for the tokenizer.
 * Tensors are dequantized to f32 on read (F16 stays f16, BF16 stays bf16), and q/k rows are permuted back from
 * llama.cpp's adjacent-pair RoPE layout to HF rotate-half, so the model runs them with its normal RoPE.
 * The file is mapped (io/mapped-file.ts): F32/F16/BF16 tensors read as views into it, not copies; q/k rows
 * are permuted into a copy (the mapping is read-only).
 */
import { XverseError } from "../errors.js";
import { f32ToF16, type Tensor } from "../tensor.js";
import { GGML } from "../gguf/types.js";
import { DEQUANTIZABLE, dequantize } from "../gguf/quants.js";
import { ggufToHf, permuteRopeRows, ropeRole } from "../gguf/names.js";
import { readGgufTensorBytes, releaseGgufTensor, type GgufFile, type GgufTensorInfo } from "./gguf.js";
import { alignedView, fitsInRam } from "./mapped-file.js";
import { readGgufParts } from "./gguf-split.js";
import type { TensorInfo, TensorSource } from "./source.js";

export interface GgufModel {
  /** config.json-style object (HF field names) for parseConfig. */
  config: Record<string, unknown>;
  /** Tensors under HF names. */
  source: TensorSource;
  /** All GGUF key/values (tokenizer.ggml.* for tokenizerFromGguf). */
  metadata: Record<string, unknown>;
  /** The file (the first part of a split model). */
  file: GgufFile;
  /** The GGUF tensor (and the file or split part holding it) behind an HF name, for loaders that use the
   *  blocks directly (Q4_0 → q4_group). */
  tensorFor(hfName: string): { file: GgufFile; info: GgufTensorInfo } | undefined;
}

export interface GgufOpenOptions {
  /**
   * What quantized tensors are dequantized to: "f32" (default, exact) or "f16" (half the memory; rounding
   * ≤ 2^-11 relative). F16 and BF16 tensors are always kept as stored.
   */
  floatType?: "f32" | "f16";
  /** Map the file (default true; falls back to reading when the native addon is not built). */
  mmap?: boolean;
  /**
   * Bytes of tensor data handed out so far and in all (every part), after each tensor: load progress. With a
   * mapping that fits in RAM, each tensor is read from disk when it is handed out, so this tracks the real I/O.
   */
  onProgress?: (done: number, total: number) => void;
}


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

/** Opens a GGUF model: header and config now, tensor bytes lazily. */
export function openGgufModel(path: string, opts: GgufOpenOptions = {}): GgufModel {
  let done = 0, total = 0;
  const onRead = opts.onProgress && ((n: number) => {
    done = Math.min(total, done + n);
    opts.onProgress!(done, total);
  });
  // openBytes reads `populate` when it hands bytes out, so it can be decided once the sizes are known
  const bytesOpts = { mmap: opts.mmap !== false, populate: false, onRead };
  const parts = readGgufParts(path, bytesOpts);
  total = parts.reduce((n, p) => n + p.tensors.reduce((m, t) => m + t.nbytes, 0), 0);
  bytesOpts.populate = fitsInRam(total);
  const file = parts[0];
  const config = ggufConfig(file, parts.flatMap((p) => p.tensors));
  const heads = config.num_attention_heads as number;
  const kvHeads = config.num_key_value_heads as number;

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

  const half = opts.floatType === "f16";
  // F32 stays f32; F16/BF16 stay as stored; block types become f32 or (floatType f16) f16.
  const dtypeOf = (t: GgufTensorInfo) =>
    t.type === GGML.F16 ? "f16" : t.type === GGML.BF16 ? "bf16" : t.type === GGML.F32 || !half ? "f32" : "f16";
  const get = (name: string): GgufTensorInfo => {
    const t = byHf.get(name);
    if (!t) throw new XverseError("bad_checkpoint", `tensor ${name} is not in ${path}`);
    return t.info;
  };
  const partOf = (name: string): GgufFile => byHf.get(name)!.file;

  const source: TensorSource = {
    names: () => [...byHf.keys()],
    has: (name) => byHf.has(name),
    info: (name): TensorInfo => {
      const t = get(name);
      return { name, dtype: dtypeOf(t), shape: [...t.shape], file: partOf(name).path };
    },
    read: (name): Tensor => {
      const t = get(name), part = partOf(name);
      if (!DEQUANTIZABLE.has(t.type)) {
        throw new XverseError("unsupported", `${part.path}: tensor "${t.name}" is ${t.typeName}, which this engine cannot dequantize (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)`);
      }
      let data: Float32Array | Uint16Array;
      const bytes = readGgufTensorBytes(part, t);
      if (t.type === GGML.F16 || t.type === GGML.BF16 || t.type === GGML.F32) {
        // stored as we keep it: a view into the mapping (or the one buffer it was read into)
        data = alignedView(bytes, t.type === GGML.F32 ? "f32" : "u16");
      } else {
        const f = dequantize(t.type, bytes, t.nelements);
        data = dtypeOf(t) === "f16" ? toF16(f) : f;
      }
      const role = ropeRole(name);
      if (role) {
        const n = role === "q" ? heads : kvHeads;
        if (t.shape.length !== 2 || t.shape[0] % (2 * n) !== 0) {
          throw new XverseError("bad_checkpoint", `${part.path}: tensor "${t.name}" has shape [${t.shape}], which does not split into ${n} heads`);
        }
        data = permuteRopeRows(data, n, t.shape[1], false);
      }
      // copied (re-ordered, dequantized, or across a part boundary): the mapped pages are not read again
      if (data.buffer !== bytes.buffer) releaseGgufTensor(part, t);
      return { dtype: dtypeOf(t), shape: [...t.shape], data };
    },
    metadata: () => file.metadata,
    close: () => {},
  };
  return { config, source, metadata: file.metadata, file, tensorFor: (n) => byHf.get(n) };
}
