/**
 * loadModel(): a model directory (config.json + weights + tokenizer) or a .gguf file → model, tokenizer and
 * generation config, on the chosen backend, optionally quantized while loading.
 */
import { existsSync, statSync } from "node:fs";
import type { Backend } from "../backend/backend.js";
import { selectBackend, selectBackendAsync } from "../backend/select.js";
import { loadConfig, loadGenerationConfig, parseConfig, parseGenerationConfig, type ConfigOverrides, type GenerationConfig, type XverseConfig } from "../config.js";
import { XverseError } from "../errors.js";
import { openCheckpoint, resolveModelDir } from "../io/checkpoint.js";
import { openGgufModel } from "../io/gguf-model.js";
import { releaseGgufTensor } from "../io/gguf.js";
import { fitsInRam, isGgufPath, modelFileExists } from "../io/mapped-file.js";
import { sourceBytes, withReadProgress } from "../io/load-progress.js";
import { describe as describeGptq, detectGptq, gptqProjection } from "../io/gptq.js";
import type { TensorSource } from "../io/source.js";
import { projectionLoader, type ProjectionHook } from "../quant/load.js";
import { ggufProjection } from "../gguf/weights.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { loadTokenizer } from "../tokenizer/load.js";
import { tokenizerFromGguf } from "../tokenizer/gguf-vocab.js";
import { defaultModelDir } from "./embedded.js";
import { withPeftAdapter } from "../io/peft-adapter.js";
import { XverseModel } from "./xverse.js";
import type { KvType } from "../kv/layout.js";

export interface LoadModelOptions {
  /**
   * "auto" (native kernels when they load, else TypeScript), "ts", "native", "webgpu" (the GPU through the
   * optional `webgpu` package; never chosen by auto), or a Backend. Default "auto".
   */
  backend?: "auto" | "ts" | "native" | "webgpu" | Backend;
  /** Native thread count (default: physical cores). */
  threads?: number;
  /** Config overrides, e.g. XVERSE-13B-256K's rope_theta 500000 + dynamic NTK ×2 (see XVERSE_256K_ROPE). */
  overrides?: ConfigOverrides;
  /** Quantize the seven projections while loading (XVERSE's int8 / int4 scheme). */
  quantize?: 0 | 4 | 8;
  /** int4 group size (32 / 64 / 128); 0 = one scale per row. */
  groupSize?: number;
  /** A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) merged in while loading. */
  adapter?: string;
  /** KV cache storage: f16 (default), q8_0 or f32 (exact). */
  kvType?: KvType;
  /** Tokens per KV block (default 32). */
  kvBlockSize?: number;
  /** Most tokens one sequence may hold (default: max_position_embeddings). */
  ctxSize?: number;
  /** Most bytes a shared KV pool (server, chat sessions, eval) may take; default: 4 × ctxSize tokens, at most 8 GiB. */
  kvBudget?: number;
  /**
   * Map the weights file(s) instead of reading them (default true): GGUF tensors and f32/f16/bf16 safetensors
   * become views into the page cache. Needs the native addon; without it the files are read as before. Off when
   * quantizing while loading or merging an adapter: those copy every weight they touch, so a mapping would only
   * keep the file's pages resident beside the copies.
   */
  mmap?: boolean;
  /** Bytes of weights loaded so far and in all, after each tensor (the CLI draws a progress line from it). */
  onProgress?: (done: number, total: number) => void;
  /** Warnings (unused tensors, backend fallback) go here; default: stderr. */
  onWarning?: (message: string) => void;
}

export interface LoadedModel {
  model: XverseModel;
  tokenizer: Tokenizer;
  generationConfig: GenerationConfig;
  /** The directory or file loaded. */
  path: string;
}

export function resolveBackend(kind: Exclude<LoadModelOptions["backend"], "webgpu">, threads: number | undefined, warn: (m: string) => void): Backend {
  if (kind && typeof kind === "object") return kind;
  return selectBackend(kind ?? "auto", { threads, warn });
}

export async function loadModel(path: string = defaultModelDir(), opts: LoadModelOptions = {}): Promise<LoadedModel> {
  if (existsSync(path) && statSync(path).isDirectory()) path = resolveModelDir(path); // a Hugging Face cache folder → its snapshot
  const warn = opts.onWarning ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
  if (!modelFileExists(path)) throw new XverseError("not_found", `model path ${path} does not exist (give a model directory or a .gguf file)`);
  const backend = opts.backend === "webgpu" ? await selectBackendAsync("webgpu") : resolveBackend(opts.backend, opts.threads, warn);
  const isFile = !existsSync(path) || statSync(path).isFile(); // absent: the stem of byte-split parts (x.gguf.aa …)
  const mmap = opts.mmap !== false && !opts.quantize && !opts.adapter;

  let config: XverseConfig, source: TensorSource, tokenizer: Tokenizer, generationConfig: GenerationConfig;
  let ggufBlocks: ProjectionHook | undefined, gptqHook: ProjectionHook | undefined;
  let onCopied: ((name: string) => void) | undefined;
  if (isFile && isGgufPath(path)) {
    const g = openGgufModel(path, { mmap, onProgress: opts.onProgress });
    config = parseConfig(g.config, path, opts.overrides);
    source = g.source;
    tokenizer = tokenizerFromGguf(g.metadata);
    // GGUF block types (Q4_0 … Q6_K) run as stored (gguf/weights.ts); F16 / BF16 / F32 take the float path
    if (!opts.quantize) ggufBlocks = ggufProjection(g);
    // a tensor the backend copied at prepareWeight (native Q4_0 → q4_group) is not read from the file again
    onCopied = (name) => {
      const found = g.tensorFor(name);
      if (found) releaseGgufTensor(found.file, found.info);
    };
    generationConfig = parseGenerationConfig({}, config);
  } else if (isFile) {
    throw new XverseError("bad_model_path", `${path} is a file: give the model directory (config.json + weights + tokenizer.json) or a .gguf file`);
  } else {
    config = loadConfig(path, opts.overrides);
    // GPTQ / AWQ projections run as stored (q4_group / q8_group with zero points and desc_act order)
    const gptq = detectGptq(path);
    if (gptq && opts.quantize) {
      throw new XverseError("bad_flag", `this checkpoint is already quantized (${describeGptq(gptq)}, ${gptq.file}); load it without --quantize`);
    }
    if (gptq) gptqHook = gptqProjection(gptq);
    // `populate` is read when tensors are handed out: decided once the total size is known
    const bytesOpts = { mmap, populate: false };
    source = openCheckpoint(path, bytesOpts);
    const total = sourceBytes(source);
    bytesOpts.populate = fitsInRam(total);
    if (opts.onProgress) source = withReadProgress(source, opts.onProgress, total);
    tokenizer = loadTokenizer(path);
    generationConfig = loadGenerationConfig(path, config);
  }
  if (opts.adapter) source = withPeftAdapter(source, opts.adapter);
  try {
    const model = XverseModel.fromSource(config, source, {
      backend,
      projection: firstOf(ggufBlocks, gptqHook, projectionLoader(config, { quantize: opts.quantize, groupSize: opts.groupSize })),
      // a quantized token_embd / output runs as stored (lm_head quantized, embedding rows decoded per lookup)
      stored: ggufBlocks,
      onCopied,
      kvType: opts.kvType, kvBlockSize: opts.kvBlockSize, ctxSize: opts.ctxSize, kvBudget: opts.kvBudget,
      onUnused: (names) => warn(`${names.length} tensor(s) in the checkpoint are not used by the model: ${names.slice(0, 5).join(", ")}${names.length > 5 ? ", …" : ""}`),
    });
    return { model, tokenizer, generationConfig, path };
  } finally {
    source.close();
  }
}

/** The first hook that handles a projection wins; null from all means the plain float path. */
function firstOf(...hooks: (ProjectionHook | undefined)[]): ProjectionHook | undefined {
  const live = hooks.filter((h): h is ProjectionHook => h !== undefined);
  if (live.length <= 1) return live[0];
  return (name, source, rows, cols) => {
    for (const h of live) {
      const w = h(name, source, rows, cols);
      if (w) return w;
    }
    return null;
  };
}
