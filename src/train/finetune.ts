/**
 * finetune(): a model directory + a conversation file → a fine-tuned model directory (or a PEFT adapter).
 * The library entry point behind `xverse finetune`; it reads files and writes files, and reports through hooks.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { readJsonFile, loadConfig, type XverseConfig } from "../config.js";
import { XverseError } from "../errors.js";
import { loadChatSettings, resolveChatFormat, turnEndId } from "../chat/prompt.js";
import { openCheckpoint } from "../io/checkpoint.js";
import { writeSafetensors } from "../io/safetensors.js";
import { f32ToBf16, type Tensor } from "../tensor.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { encodeAll, pack, readConversations, type Conversation, type EncodeOptions, type Example } from "./data.js";
import { addLora, loadPeftAdapter, mergeLora, savePeftAdapter } from "./lora.js";
import { train, type TrainConfig, type TrainHooks, type TrainState } from "./loop.js";
import { lossPlotSvg } from "./plot.js";
import { Rng } from "./rng.js";
import { XverseTrainModel } from "./xverse-train-model.js";
import { copyFileAtomic, writeError, writeFileAtomic } from "../io/atomic.js";

export interface LoraSettings {
  r: number;
  alpha: number;
  dropout: number;
  targets: string[];
  /** Continue training this PEFT adapter instead of starting fresh ones. */
  from?: string;
  /** Write only the adapter (adapter_config.json + adapter_model.safetensors) into the output directory. */
  adapterOnly?: boolean;
}

export interface FinetuneOptions {
  modelDir: string;
  dataPath: string;
  evalDataPath?: string;
  /** Without evalDataPath: hold out this many conversations (≥ 1) or this fraction (< 1) for evaluation. */
  valSize?: number;
  outDir: string;
  tokenizer: Tokenizer;
  train: TrainConfig;
  lora?: LoraSettings;
  /** "v1" | "v2"; default as `xverse chat` decides (config.json chat_format, else v2). */
  format?: string;
  /** Cut examples to this many tokens (default: max_position_embeddings). */
  maxLength?: number;
  packing?: boolean;
  resume?: boolean;
  /** Dtype of the written weights: "auto" = the input checkpoint's. */
  saveDtype?: "auto" | "f32" | "bf16";
  hooks?: TrainHooks;
  /** Abort to stop after the current step (a checkpoint is saved; resume later). */
  signal?: AbortSignal;
  /** Data already read with prepareData (so a caller that inspected it does not tokenize twice). */
  prepared?: PreparedData;
}

export interface PreparedData {
  format: "v1" | "v2";
  encode: EncodeOptions;
  padId: number;
  conversations: Conversation[];
  train: Example[];
  eval: Example[] | null;
  dropped: number;
}

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "LICENSE"];

/** Reads and tokenizes the data the way the chat command will prompt the result. */
export function prepareData(o: Pick<FinetuneOptions, "modelDir" | "dataPath" | "evalDataPath" | "valSize" | "tokenizer" | "format" | "maxLength" | "packing">, cfg: XverseConfig, seed = 0): PreparedData {
  const settings = loadChatSettings(o.modelDir);
  const format = resolveChatFormat(o.format ?? null, cfg.chatFormat, null);
  if (format === "template") throw new XverseError("bad_flag", "fine-tuning data is built with the XVERSE v1 or v2 format: pass --format v1 or --format v2");
  const tok = o.tokenizer;
  const encode: EncodeOptions = {
    format,
    eosId: turnEndId(tok, { config: cfg }),
    bosId: settings.addBosToken ? tok.bosId : null,
    maxLength: o.maxLength ?? cfg.maxPositionEmbeddings,
  };
  const padId = cfg.padTokenId ?? tok.padId ?? 0;
  let conversations = readConversations(o.dataPath);
  let held: Conversation[] | null = o.evalDataPath ? readConversations(o.evalDataPath) : null;
  if (o.valSize && !held) {
    // LLaMA-Factory's val_size: a count (≥ 1) or a fraction of the data, split off after a seeded shuffle
    const n = o.valSize >= 1 ? Math.floor(o.valSize) : Math.round(o.valSize * conversations.length);
    if (n < 1 || n >= conversations.length) throw new XverseError("bad_flag", `--val-size ${o.valSize} leaves no evaluation or no training data (${conversations.length} conversations)`);
    const order = new Rng(seed ^ 0x5eed).shuffle(conversations.map((_, i) => i));
    held = order.slice(0, n).map((i) => conversations[i]);
    conversations = order.slice(n).sort((a, b) => a - b).map((i) => conversations[i]);
  }
  const enc = encodeAll(tok, conversations, encode);
  let trainEx = enc.examples;
  if (o.packing) trainEx = pack(trainEx, encode.maxLength!);
  const evalEx = held ? encodeAll(tok, held, encode).examples : null;
  return { format, encode, padId, conversations, train: trainEx, eval: evalEx, dropped: enc.dropped };
}

function toSaveTensor(t: Tensor, dtype: "f32" | "bf16"): Tensor {
  if (dtype === "f32") return t;
  const src = t.data as Float32Array, out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16(src[i]);
  return { dtype: "bf16", shape: t.shape, data: out };
}

/** Writes a normal model directory: weights, config.json (recording the chat format), generation and tokenizer files. */
export function writeModelDir(model: XverseTrainModel, srcDir: string, outDir: string, dtype: "f32" | "bf16", format: string): void {
  const config = { ...readJsonFile(join(srcDir, "config.json")), torch_dtype: dtype === "bf16" ? "bfloat16" : "float32", chat_format: format };
  const created = !existsSync(outDir);
  try {
    mkdirSync(outDir, { recursive: true });
    // each file atomic; config.json last, so a directory with a config.json holds a whole model
    writeSafetensors(join(outDir, "model.safetensors"), model.tensors().map(({ name, tensor }) => ({ name, tensor: toSaveTensor(tensor, dtype) })), { format: "pt" });
    for (const f of ["generation_config.json", ...TOKENIZER_FILES]) {
      if (existsSync(join(srcDir, f))) copyFileAtomic(join(srcDir, f), join(outDir, f));
    }
    writeFileAtomic(join(outDir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  } catch (e) {
    // a directory this call made holds only a part of the model: remove it (a resumed run writes it again)
    if (created) rmSync(outDir, { recursive: true, force: true });
    throw writeError(outDir, e, created ? "the partial model was removed" : "files already there were replaced one by one, config.json last");
  }
}

export interface FinetuneResult {
  state: TrainState;
  data: PreparedData;
  /** Where the model (or adapter) was written. */
  outDir: string;
  adapterDir: string | null;
}

export async function finetune(o: FinetuneOptions): Promise<FinetuneResult> {
  const cfg = loadConfig(o.modelDir);
  const data = o.prepared ?? prepareData(o, cfg, o.train.seed);
  const src = openCheckpoint(o.modelDir);
  let model: XverseTrainModel, srcDtype: string;
  try {
    srcDtype = src.info("model.embed_tokens.weight").dtype;
    model = XverseTrainModel.fromSource(cfg, src);
  } finally {
    src.close();
  }
  model.rng.state = (o.train.seed * 2654435761) >>> 0;
  if (o.lora) {
    model.setBaseTrainable(false);
    if (o.lora.from) loadPeftAdapter(model, o.lora.from);
    else addLora(model, { r: o.lora.r, alpha: o.lora.alpha, dropout: o.lora.dropout, targets: o.lora.targets, seed: o.train.seed });
  }
  mkdirSync(o.outDir, { recursive: true });
  const describe = {
    model: resolve(o.modelDir), data: resolve(o.dataPath), lora: o.lora ? { r: o.lora.r, alpha: o.lora.alpha, targets: o.lora.targets } : null,
    batchSize: o.train.batchSize, gradAccum: o.train.gradAccum, seed: o.train.seed, packing: o.packing ?? false, maxLength: data.encode.maxLength,
  };
  const state = await train(model, data.train, data.eval, o.train, {
    padId: data.padId, checkpointDir: o.outDir, resume: o.resume, hooks: o.hooks, describe, signal: o.signal,
  });
  writeFileAtomic(join(o.outDir, "training_loss.svg"), lossPlotSvg(state.history, `training loss of ${o.outDir}`));
  writeFileAtomic(join(o.outDir, "trainer_log.jsonl"), state.history.map((e) => JSON.stringify(e)).join("\n") + "\n");
  // stopped early: the checkpoint holds the progress; the model is written when a --resume run completes
  if (state.stopped) return { state, data, outDir: o.outDir, adapterDir: null };
  const dtype = o.saveDtype && o.saveDtype !== "auto" ? o.saveDtype : srcDtype === "bf16" ? "bf16" : "f32";
  let adapterDir: string | null = null;
  if (o.lora) {
    adapterDir = o.lora.adapterOnly ? o.outDir : join(o.outDir, "adapter");
    savePeftAdapter(model, adapterDir, o.modelDir);
    if (!o.lora.adapterOnly) {
      mergeLora(model);
      writeModelDir(model, o.modelDir, o.outDir, dtype, data.format);
    }
  } else {
    writeModelDir(model, o.modelDir, o.outDir, dtype, data.format);
  }
  return { state, data, outDir: o.outDir, adapterDir };
}
