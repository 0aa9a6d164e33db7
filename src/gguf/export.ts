/**
 * Any checkpoint we can load → a GGUF file llama.cpp runs: architecture `xverse` (untied output.weight) for
 * XVERSE models, `llama` for LLaMA ones; the metadata llama.cpp requires; q/k rows permuted to its
 * adjacent-pair RoPE; an SPM-style (`tokenizer.ggml.model = "llama"`) vocabulary from tokenizer.json.
 */
import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import type { XverseConfig } from "../config.js";
import { XverseError } from "../errors.js";
import type { TensorSource } from "../io/source.js";
import { f32ToF16, toFloat32 } from "../tensor.js";
import { hfToGguf, permuteRopeRows, ropeRole } from "./names.js";
import { quantizeQ2_K, quantizeQ3_K, quantizeQ4_K, quantizeQ5_0, quantizeQ5_1, quantizeQ5_K, quantizeQ6_K } from "./kquantize.js";
import { quantizeQ4_0, quantizeQ8_0 } from "./quants.js";
import { GGML, GGML_TYPES } from "./types.js";
import { writeGguf, type GgufWriteTensor } from "./writer.js";

export type ExportType = "f32" | "f16" | "q8_0" | "q4_0" | "q4_k_m" | "q5_k_m" | "q6_k";

/** llama.cpp `llama_ftype` values for general.file_type. */
const FILE_TYPE: Record<ExportType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, q4_k_m: 15, q5_k_m: 17, q6_k: 18 };

/** f32 row-major data → the bytes of a ggml tensor of `type` (the 2-D block types we write). */
const WRITERS: ReadonlyMap<number, (x: Float32Array) => Uint8Array> = new Map([
  [GGML.Q8_0, quantizeQ8_0], [GGML.Q4_0, quantizeQ4_0], [GGML.Q5_0, quantizeQ5_0], [GGML.Q5_1, quantizeQ5_1],
  [GGML.Q2_K, quantizeQ2_K], [GGML.Q3_K, quantizeQ3_K], [GGML.Q4_K, quantizeQ4_K], [GGML.Q5_K, quantizeQ5_K],
  [GGML.Q6_K, quantizeQ6_K],
]);

/**
 * llama.cpp's "use more bits" layer rule for the _M mixtures: the first and last eighth of the layers, and every
 * third layer in between (llama_tensor_get_type's use_more_bits; integer division as in C).
 */
export function useMoreBits(layer: number, nLayers: number): boolean {
  const e = Math.floor(nLayers / 8);
  return layer < e || layer >= Math.floor((7 * nLayers) / 8) || (layer - e) % 3 === 2;
}

/**
 * The ggml type of one 2-D weight, following llama.cpp's choices for each file type:
 * - q4_k_m / q5_k_m: Q4_K / Q5_K, except output.weight → Q6_K, and attn_v / ffn_down → Q6_K in the layers
 *   useMoreBits picks; token_embd stays at the base type (llama.cpp treats it like output only when the file has
 *   no output.weight, and ours always has one). q6_k: Q6_K everywhere. q8_0 / q4_0: that type.
 * - A row length that is not a multiple of 256 cannot hold K blocks; like llama.cpp, Q4_K falls back to Q5_0,
 *   Q5_K to Q5_1, Q6_K to Q8_0; a row length that is not a multiple of 32 either is written as F16.
 * Returns the type and, for a fallback, the type that was wanted.
 */
export function exportTensorType(type: ExportType, name: string, cols: number, nLayers: number): { type: number; wanted?: number } {
  if (type === "f32") return { type: GGML.F32 };
  if (type === "f16") return { type: GGML.F16 };
  let t: number = type === "q8_0" ? GGML.Q8_0 : type === "q4_0" ? GGML.Q4_0 : type === "q4_k_m" ? GGML.Q4_K : type === "q5_k_m" ? GGML.Q5_K : GGML.Q6_K;
  if (type === "q4_k_m" || type === "q5_k_m") {
    const layer = /^blk\.(\d+)\.(attn_v|ffn_down)\.weight$/.exec(name);
    if (name === "output.weight" || (layer && useMoreBits(Number(layer[1]), nLayers))) t = GGML.Q6_K;
  }
  const wanted = t;
  if (t >= GGML.Q2_K && t <= GGML.Q6_K && cols % 256 !== 0) {
    t = t === GGML.Q4_K ? GGML.Q5_0 : t === GGML.Q5_K ? GGML.Q5_1 : GGML.Q8_0;
  }
  if (cols % 32 !== 0) t = GGML.F16;
  return t === wanted ? { type: t } : { type: t, wanted };
}

/** llama.cpp token types (tokenizer.ggml.token_type). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface GgufVocab {
  tokens: string[];
  scores: number[];
  types: number[];
  bos: number | null;
  eos: number | null;
  pad: number | null;
  unk: number | null;
  addBos: boolean;
  addEos: boolean;
}

type Json = Record<string, any>;

/**
 * tokenizer.json (BPE with byte fallback, SentencePiece-style ▁ spaces) → the SPM vocabulary llama.cpp uses.
 * Scores: llama.cpp's SPM tokenizer merges the adjacent pair whose result has the highest score, so a token
 * made by merge number r scores −r (earlier merges win, as in BPE); other tokens score below every merge.
 * `vocabSize` pads the list with unused "[PAD{id}]" tokens up to the embedding's row count, as convert_hf_to_gguf does.
 */
export function vocabFromTokenizerJson(path: string, vocabSize: number): GgufVocab {
  let tj: Json;
  try {
    tj = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new XverseError("bad_tokenizer", `cannot read ${path}: ${(e as Error).message}`);
  }
  const model = tj.model as Json | undefined;
  if (!model || model.type !== "BPE" || typeof model.vocab !== "object") {
    throw new XverseError("unsupported", `${path}: only BPE tokenizer.json files can be written to GGUF (got model type ${JSON.stringify(model?.type)})`);
  }
  const tokens: string[] = [];
  for (const [tok, id] of Object.entries(model.vocab as Record<string, number>)) tokens[id] = tok;
  const added = new Map<number, Json>();
  for (const a of (tj.added_tokens ?? []) as Json[]) {
    tokens[a.id] = a.content;
    added.set(a.id, a);
  }
  if (tokens.length > vocabSize) {
    throw new XverseError("bad_tokenizer", `${path} has ${tokens.length} tokens but the model's vocab_size is ${vocabSize}`);
  }
  const rank = new Map<string, number>();
  ((model.merges ?? []) as (string | string[])[]).forEach((m, r) => {
    const [a, b] = typeof m === "string" ? m.split(" ") : m;
    const t = a + b;
    if (!rank.has(t)) rank.set(t, r);
  });
  const nMerges = rank.size;
  const unkTok = typeof model.unk_token === "string" ? model.unk_token : null;
  const scores: number[] = [], types: number[] = [];
  for (let id = 0; id < vocabSize; id++) {
    let t = tokens[id];
    if (t === undefined) {
      tokens[id] = t = `[PAD${id}]`;
      scores.push(-1e9);
      types.push(TOKEN_TYPE.UNUSED);
      continue;
    }
    const a = added.get(id);
    if (a) {
      scores.push(0);
      types.push(t === unkTok ? TOKEN_TYPE.UNKNOWN : a.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED);
    } else if (t === "\u0000" && !("<0x00>" in model.vocab)) {
      // llama.cpp reads token texts as C strings: a lone NUL would be an empty token and fail its vocab check.
      // XVERSE's vocabulary has one (id 6); as the byte token <0x00> it still decodes to byte 0.
      tokens[id] = "<0x00>";
      scores.push(0);
      types.push(TOKEN_TYPE.BYTE);
    } else if (/^<0x[0-9A-F]{2}>$/.test(t)) {
      scores.push(0);
      types.push(TOKEN_TYPE.BYTE);
    } else if (t === unkTok) {
      scores.push(0);
      types.push(TOKEN_TYPE.UNKNOWN);
    } else {
      const r = rank.get(t);
      scores.push(r !== undefined ? -r : -(nMerges + id));
      types.push(TOKEN_TYPE.NORMAL);
    }
  }

  const cfgPath = join(dirname(path), "tokenizer_config.json");
  const tc: Json = existsSync(cfgPath) ? JSON.parse(readFileSync(cfgPath, "utf8")) : {};
  const idOf = (v: unknown): number | null => {
    const s = typeof v === "string" ? v : v && typeof v === "object" ? (v as Json).content : null;
    if (typeof s !== "string") return null;
    const i = tokens.indexOf(s);
    return i >= 0 ? i : null;
  };
  // HF adds BOS when the post-processor's single template starts with a special token (Llama); XVERSE has none.
  const single = tj.post_processor?.type === "TemplateProcessing" ? (tj.post_processor.single as Json[]) : [];
  const postBos = single.length > 0 && "SpecialToken" in single[0];
  const postEos = single.length > 1 && "SpecialToken" in single[single.length - 1];
  return {
    tokens, scores, types,
    bos: idOf(tc.bos_token), eos: idOf(tc.eos_token), pad: idOf(tc.pad_token), unk: unkTok ? idOf(unkTok) : null,
    addBos: typeof tc.add_bos_token === "boolean" ? tc.add_bos_token : postBos,
    addEos: typeof tc.add_eos_token === "boolean" ? tc.add_eos_token : postEos,
  };
}

export interface ExportOptions {
  type: ExportType;
  /** "xverse" (default for model_type xverse) or "llama". */
  arch?: "xverse" | "llama";
  name?: string;
  onProgress?: (done: number, total: number, name: string) => void;
  /**
   * A 2-D tensor (HF name) written as stored instead of from floats: its ggml type and bytes, rows already in GGUF
   * order (GPTQ / AWQ projections a block type holds exactly, gguf/from-gptq.ts). Null: the float path.
   */
  stored?: (hf: string) => { type: number; data: () => Uint8Array } | null;
}

export interface ExportResult {
  arch: string;
  /** GGUF tensor name → ggml type name written. */
  tensorTypes: Record<string, string>;
  /** Things the file cannot carry or tensors that fell back to another type, for the user. */
  warnings: string[];
}

/** Writes `source` (HF names) as a GGUF file at `out`, atomically, one tensor in memory at a time. */
export function exportGguf(source: TensorSource, config: XverseConfig, tokenizer: string | GgufVocab, out: string, opts: ExportOptions): ExportResult {
  const arch = opts.arch ?? (config.modelType === "xverse" ? "xverse" : "llama");
  const warnings: string[] = [];
  const vocab = typeof tokenizer === "string" ? vocabFromTokenizerJson(tokenizer, config.vocabSize) : tokenizer;

  const a = (k: string) => `${arch}.${k}`;
  const metadata: Record<string, unknown> = {
    "general.architecture": arch,
    "general.name": opts.name ?? (arch === "xverse" ? "XVERSE" : "LLaMA"),
    "general.file_type": FILE_TYPE[opts.type],
    [a("context_length")]: config.maxPositionEmbeddings,
    [a("embedding_length")]: config.hiddenSize,
    [a("block_count")]: config.numLayers,
    [a("feed_forward_length")]: config.intermediateSize,
    [a("attention.head_count")]: config.numHeads,
    [a("attention.head_count_kv")]: config.numKvHeads,
    [a("attention.layer_norm_rms_epsilon")]: config.rmsNormEps,
    [a("rope.freq_base")]: config.ropeTheta,
    [a("rope.dimension_count")]: config.headDim,
    [a("vocab_size")]: config.vocabSize,
  };
  const types: Record<string, string> = {
    [a("attention.layer_norm_rms_epsilon")]: "FLOAT32",
    [a("rope.freq_base")]: "FLOAT32",
    "tokenizer.ggml.scores": "ARRAY[FLOAT32]",
    "tokenizer.ggml.token_type": "ARRAY[INT32]",
  };
  if (opts.type !== "f32" && opts.type !== "f16") metadata["general.quantization_version"] = 2;
  if (config.headDim * config.numHeads !== config.hiddenSize) {
    metadata[a("attention.key_length")] = config.headDim;
    metadata[a("attention.value_length")] = config.headDim;
  }
  if (config.ropeScaling?.type === "linear") {
    metadata[a("rope.scaling.type")] = "linear";
    metadata[a("rope.scaling.factor")] = config.ropeScaling.factor;
    types[a("rope.scaling.factor")] = "FLOAT32";
  } else if (config.ropeScaling) {
    warnings.push(`rope_scaling ${config.ropeScaling.type}×${config.ropeScaling.factor} has no GGUF equivalent in llama.cpp; the file runs with plain RoPE (base ${config.ropeTheta})`);
  }
  metadata["tokenizer.ggml.model"] = "llama";
  metadata["tokenizer.ggml.tokens"] = vocab.tokens;
  metadata["tokenizer.ggml.scores"] = vocab.scores;
  metadata["tokenizer.ggml.token_type"] = vocab.types;
  const bos = vocab.bos ?? config.bosTokenId, eos = vocab.eos ?? config.eosTokenIds[0] ?? null, pad = vocab.pad ?? config.padTokenId;
  if (bos !== null) metadata["tokenizer.ggml.bos_token_id"] = bos;
  if (eos !== null) metadata["tokenizer.ggml.eos_token_id"] = eos;
  if (vocab.unk !== null) metadata["tokenizer.ggml.unknown_token_id"] = vocab.unk;
  if (pad !== null) metadata["tokenizer.ggml.padding_token_id"] = pad;
  metadata["tokenizer.ggml.add_bos_token"] = vocab.addBos;
  metadata["tokenizer.ggml.add_eos_token"] = vocab.addEos;

  // The tensors, in llama.cpp's usual order; lm_head is written even when tied (xverse requires output.weight).
  const hfNames = ["model.embed_tokens.weight"];
  for (let i = 0; i < config.numLayers; i++) {
    for (const s of ["input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
      "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]) hfNames.push(`model.layers.${i}.${s}.weight`);
  }
  hfNames.push("model.norm.weight", "lm_head.weight");
  const srcName = (hf: string): string => {
    if (source.has(hf)) return hf;
    if (hf === "lm_head.weight" && source.has("model.embed_tokens.weight")) return "model.embed_tokens.weight";
    throw new XverseError("bad_checkpoint", `tensor ${hf} is missing from the checkpoint; cannot write a complete GGUF`);
  };

  const tensorTypes: Record<string, string> = {};
  const tensors: GgufWriteTensor[] = hfNames.map((hf) => {
    const name = hfToGguf(hf)!;
    const shape = source.info(srcName(hf)).shape;
    const cols = shape[shape.length - 1];
    const stored = shape.length === 2 ? opts.stored?.(hf) : null;
    if (stored) {
      tensorTypes[name] = GGML_TYPES.get(stored.type)!.name;
      return { name, type: stored.type, shape, data: stored.data };
    }
    let type: number = GGML.F32;
    if (shape.length === 2) {
      const pick = exportTensorType(opts.type, name, cols, config.numLayers);
      type = pick.type;
      if (pick.wanted !== undefined) {
        const why = pick.type === GGML.F16 ? "not a multiple of 32" : "not a multiple of 256";
        warnings.push(`${name} [${shape}]: row length ${cols} is ${why}, written as ${GGML_TYPES.get(type)!.name} instead of ${GGML_TYPES.get(pick.wanted)!.name}`);
      }
    }
    tensorTypes[name] = GGML_TYPES.get(type)!.name;
    const data = (): Uint8Array => {
      let x = toFloat32(source.read(srcName(hf)));
      const role = ropeRole(hf);
      if (role) x = permuteRopeRows(x, role === "q" ? config.numHeads : config.numKvHeads, cols, true);
      if (type === GGML.F32) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
      const write = WRITERS.get(type);
      if (write) return write(x);
      const hbuf = new Uint16Array(x.length);
      for (let i = 0; i < x.length; i++) hbuf[i] = f32ToF16(x[i]);
      return new Uint8Array(hbuf.buffer);
    };
    return { name, type, shape, data };
  });

  writeGguf(out, { metadata, types, tensors, onProgress: opts.onProgress });
  return { arch, tensorTypes, warnings };
}
