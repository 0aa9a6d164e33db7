/**
 * config.json and generation_config.json, parsed once at the boundary: HF / XVERSE field names kept, derived
 * fields computed, unknown keys ignored, impossible values rejected naming the field. From parsed JSON only (no
 * file access), so browsers use it too; config.ts adds reading the files in Node.
 */
import { XverseError } from "./errors.js";

export type RopeScaling =
  | { type: "linear"; factor: number }
  | { type: "dynamic"; factor: number };

export interface XverseConfig {
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  /** num_key_value_heads, falling back to num_attention_heads (no GQA). */
  numKvHeads: number;
  /** head_dim, or hidden_size / num_attention_heads. */
  headDim: number;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  /** rope_theta, default 10000. */
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** XVERSE's non-standard key used by the v2 chat builder, if present. */
  maxTokenizerTruncation: number | null;
  /** XVERSE's non-standard key: 0 (none), 4 or 8 after quantization. */
  quantizationBit: number;
  /** Group size for our group-wise int4 (0 = one scale per row). */
  quantizationGroupSize: number;
  /** The chat prompt format this directory records ("v1" | "v2"), if any. */
  chatFormat: string | null;
  /** The raw JSON, for tools that need fields we do not model. */
  raw: Readonly<Record<string, unknown>>;
}

export interface ConfigOverrides {
  ropeTheta?: number;
  ropeScaling?: RopeScaling | null;
  maxPositionEmbeddings?: number;
}

export interface GenerationConfig {
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  maxNewTokens: number;
}

type Json = Record<string, unknown>;

function num(raw: Json, key: string, where: string, opts: { int?: boolean; min?: number; def?: number }): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (opts.def !== undefined) return opts.def;
    throw new XverseError("bad_config", `${where}: field "${key}" is missing`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new XverseError("bad_config", `${where}: field "${key}" must be a ${typeof v === "number" ? "finite number (a value beyond ±1.8e308 reads as Infinity)" : "number"}, got ${typeof v === "number" ? v : JSON.stringify(v)}`);
  }
  if (opts.int && !Number.isInteger(v)) throw new XverseError("bad_config", `${where}: field "${key}" must be an integer, got ${v}`);
  if (opts.min !== undefined && v < opts.min) throw new XverseError("bad_config", `${where}: field "${key}" must be ≥ ${opts.min}, got ${v}`);
  return v;
}

function optId(raw: Json, key: string): number | null {
  const v = raw[key];
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (Array.isArray(v) && typeof v[0] === "number") return v[0];
  return null;
}

function idList(raw: Json, key: string): number[] {
  const v = raw[key];
  if (typeof v === "number") return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number");
  return [];
}

export function parseRopeScaling(v: unknown, where: string): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object") throw new XverseError("bad_config", `${where}: rope_scaling must be an object like {"type": "dynamic", "factor": 2.0}`);
  const o = v as Json;
  const type = (o.type ?? o.rope_type) as unknown;
  const factor = o.factor;
  if (type === "default" || type === undefined) return null;
  if (type !== "linear" && type !== "dynamic") {
    throw new XverseError("unsupported", `${where}: rope_scaling type ${JSON.stringify(type)} is not supported (use "linear" or "dynamic")`);
  }
  if (typeof factor !== "number" || !(factor >= 1)) {
    throw new XverseError("bad_config", `${where}: rope_scaling.factor must be a number ≥ 1, got ${JSON.stringify(factor)}`);
  }
  return { type, factor };
}

/** Parses a config.json object (XVERSE or LLaMA field names). `where` names the file in errors. */
export function parseConfig(raw: Json, where = "config.json", overrides: ConfigOverrides = {}): XverseConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new XverseError("bad_config", `${where}: expected a JSON object`);
  }
  const hiddenSize = num(raw, "hidden_size", where, { int: true, min: 1 });
  const numHeads = num(raw, "num_attention_heads", where, { int: true, min: 1 });
  const numKvHeads = num(raw, "num_key_value_heads", where, { int: true, min: 1, def: numHeads });
  if (numHeads % numKvHeads !== 0) {
    throw new XverseError("bad_config", `${where}: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  }
  const headDim = num(raw, "head_dim", where, { int: true, min: 2, def: hiddenSize / numHeads });
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw new XverseError("bad_config", `${where}: hidden_size (${hiddenSize}) / num_attention_heads (${numHeads}) must be an even integer head size`);
  }
  const act = raw.hidden_act ?? "silu";
  if (act !== "silu") throw new XverseError("unsupported", `${where}: hidden_act ${JSON.stringify(act)} is not supported (XVERSE uses "silu")`);
  if (raw.attention_bias === true || raw.bias === true) {
    throw new XverseError("unsupported", `${where}: attention_bias true is not supported (XVERSE has no biases)`);
  }
  const cfg: XverseConfig = {
    modelType: typeof raw.model_type === "string" ? raw.model_type : "xverse",
    vocabSize: num(raw, "vocab_size", where, { int: true, min: 1 }),
    hiddenSize,
    intermediateSize: num(raw, "intermediate_size", where, { int: true, min: 1 }),
    numLayers: num(raw, "num_hidden_layers", where, { int: true, min: 1 }),
    numHeads,
    numKvHeads,
    headDim,
    maxPositionEmbeddings: overrides.maxPositionEmbeddings ?? num(raw, "max_position_embeddings", where, { int: true, min: 1, def: 8192 }),
    rmsNormEps: num(raw, "rms_norm_eps", where, { min: 0, def: 1e-6 }),
    ropeTheta: overrides.ropeTheta ?? num(raw, "rope_theta", where, { min: 1, def: 10000 }),
    ropeScaling: overrides.ropeScaling !== undefined ? overrides.ropeScaling : parseRopeScaling(raw.rope_scaling, where),
    bosTokenId: optId(raw, "bos_token_id"),
    eosTokenIds: idList(raw, "eos_token_id"),
    padTokenId: optId(raw, "pad_token_id"),
    maxTokenizerTruncation: typeof raw.max_tokenizer_truncation === "number" ? raw.max_tokenizer_truncation : null,
    quantizationBit: num(raw, "quantization_bit", where, { int: true, min: 0, def: 0 }),
    quantizationGroupSize: num(raw, "quantization_group_size", where, { int: true, min: 0, def: 0 }),
    chatFormat: typeof raw.chat_format === "string" ? raw.chat_format : null,
    raw: Object.freeze({ ...raw }),
  };
  if (![0, 4, 8].includes(cfg.quantizationBit)) {
    throw new XverseError("bad_config", `${where}: quantization_bit must be 0, 4 or 8, got ${cfg.quantizationBit}`);
  }
  return Object.freeze(cfg);
}

/** Parses generation_config.json; missing fields get Hugging Face's defaults. */
export function parseGenerationConfig(raw: Json, model?: XverseConfig): GenerationConfig {
  const where = "generation_config.json";
  const eos = idList(raw, "eos_token_id");
  return Object.freeze({
    bosTokenId: optId(raw, "bos_token_id") ?? model?.bosTokenId ?? null,
    eosTokenIds: eos.length ? eos : model?.eosTokenIds ?? [],
    padTokenId: optId(raw, "pad_token_id") ?? model?.padTokenId ?? null,
    doSample: raw.do_sample === true,
    temperature: num(raw, "temperature", where, { min: 0, def: 1 }),
    topK: num(raw, "top_k", where, { int: true, min: 0, def: 50 }),
    topP: num(raw, "top_p", where, { min: 0, def: 1 }),
    repetitionPenalty: num(raw, "repetition_penalty", where, { min: 0, def: 1 }),
    maxNewTokens: num(raw, "max_new_tokens", where, { int: true, min: 0, def: 256 }),
  });
}

/**
 * XVERSE-13B-256K's config lacks the RoPE settings its modeling code hard-codes (xverse-facts §7).
 * Pass these as overrides (`--rope-theta 500000 --rope-scaling dynamic:2`).
 */
export const XVERSE_256K_ROPE: ConfigOverrides = Object.freeze({ ropeTheta: 500000, ropeScaling: { type: "dynamic" as const, factor: 2 } });

/** Parses a `--rope-scaling` flag value: "none", "linear:4", "dynamic:2". */
export function parseRopeScalingFlag(s: string): RopeScaling | null {
  if (s === "none") return null;
  const m = /^(linear|dynamic):([0-9.]+)$/.exec(s);
  if (!m) throw new XverseError("bad_flag", `--rope-scaling must be none, linear:FACTOR or dynamic:FACTOR, got "${s}"`);
  return parseRopeScaling({ type: m[1], factor: Number(m[2]) }, "--rope-scaling");
}
