/**
 * Loading a model without a file system (browsers; Node works too): a GGUF file, or safetensors + config.json +
 * tokenizer.json (+ tokenizer_config.json, generation_config.json), each behind a ByteReader — a picked File,
 * a URL read with Range requests, bytes in memory. Headers are parsed by the same code Node's loader uses
 * (io/safetensors-header.ts, io/gguf-parse.ts, io/gguf-tensors.ts, tokenizer/from-json.ts, config-parse.ts).
 *
 * TensorSource.read is synchronous, so every tensor's bytes are fetched first (with progress), then the model is
 * built from memory: the weights are held once, as the backend keeps them, plus one tensor in flight. GGUF block
 * tensors (Q4_0 … Q6_K) are kept as stored, through the Node loader's hook (gguf/block-weights.ts): a 4 GB
 * Q4_K_M file takes about 4 GB, not its f32 expansion. Only norms and float tensors are decoded.
 */
import type { Backend, Weight } from "../backend/backend.js";
import { NO_CHAT_SETTINGS, chatSettingsFromJson, type ChatSettings } from "../chat/prompt-core.js";
import { parseConfig, parseGenerationConfig, type GenerationConfig, type XverseConfig } from "../config-parse.js";
import { XverseError } from "../errors.js";
import { fetchReader, readJson, readText, type ByteReader, type FetchReaderOptions } from "../io/byte-reader.js";
import { parseGgufHeader, type GgufFile, type GgufTensorInfo, type ReadAt } from "../io/gguf-parse.js";
import { decodeGgufTensor, ggufConfig, ggufDtype, ggufHfNames } from "../io/gguf-tensors.js";
import { ggufBlockProjection } from "../gguf/block-weights.js";
import { releaseGpuWeight } from "../backend/webgpu/weights.js";
import type { WeightLoadOptions } from "../model/weights.js";
import { allocTensorData, bytesOf, parseSafetensorsHeader, safetensorsHeaderLength } from "../io/safetensors-header.js";
import type { TensorInfo, TensorSource } from "../io/source.js";
import type { KvType } from "../kv/layout.js";
import { XverseModel } from "../model/xverse.js";
import { numel, type Tensor } from "../tensor.js";
import { tokenizerFromJson, type TokenizerConfig } from "../tokenizer/from-json.js";
import { tokenizerFromGguf } from "../tokenizer/gguf-vocab.js";
import type { Tokenizer } from "../tokenizer/types.js";

/** The files of one model. `weights` is a .gguf (which holds everything) or a .safetensors (which needs the rest). */
export interface ModelFiles {
  weights: ByteReader;
  config?: ByteReader;
  tokenizer?: ByteReader;
  tokenizerConfig?: ByteReader;
  generationConfig?: ByteReader;
}

export interface BrowserLoadOptions {
  backend: Backend;
  /** Bytes of weights read so far and in all, after each tensor. */
  onProgress?: (done: number, total: number) => void;
  /** KV cache storage (default f16, as in Node). */
  kvType?: KvType;
  /** Most tokens one sequence may hold (default: max_position_embeddings). */
  ctxSize?: number;
}

export interface BrowserModel {
  /** The weights file's name. */
  name: string;
  format: "gguf" | "safetensors";
  model: XverseModel;
  tokenizer: Tokenizer;
  config: XverseConfig;
  generationConfig: GenerationConfig;
  /** tokenizer_config.json's chat settings (none for GGUF, as in Node's server). */
  settings: ChatSettings;
  /** Bytes of weights read. */
  bytes: number;
  /** How many matrices (embedding, projections, lm_head) are held in each weight format, e.g. { q8_0: 37 }. */
  formats: Record<string, number>;
}

const isGguf = (name: string) => /\.gguf$/i.test(name);

/** Sorts picked files into a ModelFiles by name: one .gguf, or a .safetensors with its JSON files. */
export function modelFilesFrom(files: readonly ByteReader[]): ModelFiles {
  const base = (r: ByteReader) => r.name.replace(/^.*[\\/]/, "");
  const find = (n: string) => files.find((f) => base(f) === n);
  const gguf = files.filter((f) => isGguf(base(f)));
  const st = files.filter((f) => /\.safetensors$/i.test(base(f)));
  if (gguf.length + st.length !== 1) {
    throw new XverseError("bad_model_path", `pick one .gguf file, or one .safetensors file with its config.json and tokenizer.json (got ${files.map(base).join(", ") || "no files"}); sharded checkpoints are not supported here`);
  }
  if (gguf.length) return { weights: gguf[0] };
  return {
    weights: st[0], config: find("config.json"), tokenizer: find("tokenizer.json"),
    tokenizerConfig: find("tokenizer_config.json"), generationConfig: find("generation_config.json"),
  };
}

/**
 * A model directory served over HTTP (e.g. `xverse serve`'s /models/stories260K/): model.safetensors + JSON files.
 * Each file is a ByteReader over Range requests; the optional ones (tokenizer_config.json…) may be missing.
 */
export async function modelFilesAt(baseUrl: string, opts: FetchReaderOptions = {}): Promise<ModelFiles> {
  // a relative base ("models/stories260K/") is relative to the page, where there is one
  const base = new URL(baseUrl.endsWith("/") ? baseUrl : baseUrl + "/", (globalThis as { location?: { href: string } }).location?.href);
  const url = (n: string) => new URL(n, base).href;
  const optional = (n: string) => fetchReader(url(n), opts).catch(() => undefined);
  const [weights, config, tokenizer, tokenizerConfig, generationConfig] = await Promise.all([
    fetchReader(url("model.safetensors"), opts), optional("config.json"), optional("tokenizer.json"),
    optional("tokenizer_config.json"), optional("generation_config.json"),
  ]);
  return { weights, config, tokenizer, tokenizerConfig, generationConfig };
}

export async function loadModelFiles(files: ModelFiles, opts: BrowserLoadOptions): Promise<BrowserModel> {
  return isGguf(files.weights.name) ? loadGguf(files.weights, opts) : loadSafetensors(files, opts);
}

/** A TensorSource over tensors already in memory. */
function memorySource(tensors: Map<string, Tensor>, file: string, metadata: Record<string, unknown> = {}): TensorSource {
  const get = (name: string): Tensor => {
    const t = tensors.get(name);
    if (!t) throw new XverseError("missing_tensor", `${file}: no tensor named "${name}"`);
    return t;
  };
  return {
    names: () => [...tensors.keys()],
    has: (name) => tensors.has(name),
    info: (name): TensorInfo => ({ name, dtype: get(name).dtype, shape: get(name).shape.slice(), file }),
    read: get,
    metadata: () => metadata,
    close: () => tensors.clear(),
  };
}

function build(config: XverseConfig, source: TensorSource, opts: BrowserLoadOptions, hooks: Pick<WeightLoadOptions, "projection" | "stored"> = {}): XverseModel {
  try {
    return XverseModel.fromSource(config, source, { backend: opts.backend, kvType: opts.kvType, ctxSize: opts.ctxSize, ...hooks });
  } finally {
    // the model holds what it keeps; tensors it copied (prepareWeight) or did not use are let go here
    source.close();
  }
}

async function loadSafetensors(files: ModelFiles, opts: BrowserLoadOptions): Promise<BrowserModel> {
  const w = files.weights;
  if (!files.config) throw new XverseError("not_found", `${w.name} needs its config.json: pick it too (and tokenizer.json)`);
  if (!files.tokenizer) throw new XverseError("not_found", `${w.name} needs its tokenizer.json: pick it too`);
  const config = parseConfig(await readJson(files.config), files.config.name);
  const genRaw = files.generationConfig ? await readJson(files.generationConfig) : {};
  const tokRaw = files.tokenizerConfig ? await readJson(files.tokenizerConfig) : {};
  const specials: TokenizerConfig = {};
  for (const k of ["bos_token", "eos_token", "pad_token"] as const) if (tokRaw[k] !== undefined) specials[k] = tokRaw[k] as TokenizerConfig[typeof k];
  let tokenizer: Tokenizer;
  try {
    tokenizer = tokenizerFromJson(await readText(files.tokenizer), specials);
  } catch (e) {
    if (e instanceof XverseError) throw new XverseError(e.code, `${files.tokenizer.name}: ${e.message}`);
    throw e;
  }

  const headerLen = safetensorsHeaderLength(await w.read(0, Math.min(8, w.size)), w.name, w.size);
  const header = parseSafetensorsHeader(await w.read(8, headerLen), w.name, w.size);
  const total = header.entries.reduce((n, e) => n + e.end - e.begin, 0);
  const tensors = new Map<string, Tensor>();
  let done = 0;
  for (const e of header.entries) {
    const data = allocTensorData(e.dtype, numel(e.shape), `${w.name}: tensor "${e.name}"`);
    bytesOf(data).set(await w.read(e.begin, e.end - e.begin));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
    opts.onProgress?.((done += e.end - e.begin), total);
  }
  const model = build(config, memorySource(tensors, w.name, header.metadata), opts);
  return {
    name: w.name, format: "safetensors", model, tokenizer, config, formats: weightFormats(model),
    generationConfig: parseGenerationConfig(genRaw, config),
    settings: files.tokenizerConfig ? chatSettingsFromJson(tokRaw) : NO_CHAT_SETTINGS, bytes: total,
  };
}

/** Reads a GGUF header of unknown length: a growing prefix of the file until the parser has all it needs. */
async function ggufHeader(r: ByteReader): Promise<GgufFile> {
  const NEED_MORE = Symbol("need more");
  for (let have = Math.min(r.size, 1 << 20); ; have = Math.min(r.size, have * 4)) {
    const prefix = await r.read(0, have);
    const readAt: ReadAt = (dst, off, len, pos) => {
      if (pos + len > prefix.length && prefix.length < r.size) throw NEED_MORE;
      const part = prefix.subarray(pos, Math.min(pos + len, prefix.length));
      dst.set(part, off);
      return part.length;
    };
    try {
      return parseGgufHeader(readAt, r.size, r.name);
    } catch (e) {
      if (e !== NEED_MORE) throw e;
    }
  }
}

async function loadGguf(r: ByteReader, opts: BrowserLoadOptions): Promise<BrowserModel> {
  const file = await ggufHeader(r);
  const config = parseConfig(ggufConfig(file), r.name);
  const tokenizer = tokenizerFromGguf(file.metadata);
  const byHf = ggufHfNames([file]);
  const total = file.tensors.reduce((n, t) => n + t.nbytes, 0);
  // every tensor's stored bytes, as in the file: block types (Q4_0 … Q6_K) stay blocks, as Node's loader keeps them
  const stored = new Map<string, { info: GgufTensorInfo; bytes: Uint8Array }>();
  let done = 0;
  for (const [name, { info }] of byHf) {
    stored.set(name, { info, bytes: await r.read(file.dataOffset + info.offset, info.nbytes) });
    opts.onProgress?.((done = Math.min(total, done + info.nbytes)), total);
  }
  const heads = config.numHeads, kvHeads = config.numKvHeads;
  const get = (name: string) => {
    const t = stored.get(name);
    if (!t) throw new XverseError("missing_tensor", `${r.name}: no tensor named "${name}"`);
    return t;
  };
  const source: TensorSource = {
    names: () => [...stored.keys()],
    has: (name) => stored.has(name),
    info: (name): TensorInfo => ({ name, dtype: ggufDtype(get(name).info), shape: get(name).info.shape.slice(), file: r.name }),
    // the float path (norms; F32 / F16 / BF16 matrices; a block type the hook does not take): decoded on read
    read: (name) => { const t = get(name); return decodeGgufTensor(name, t.info, () => t.bytes, { path: r.name, heads, kvHeads }); },
    metadata: () => file.metadata,
    close: () => stored.clear(),
  };
  // the Node loader's hook (gguf/weights.ts's ggufProjection, over bytes in memory instead of a mapped file)
  const blocks = ggufBlockProjection((name) => {
    const t = stored.get(name);
    return t && { info: t.info, where: `${r.name}: tensor "${t.info.name}"`, bytes: () => t.bytes };
  }, heads, kvHeads);
  const model = build(config, source, opts, { projection: blocks, stored: blocks });
  return {
    name: r.name, format: "gguf", model, tokenizer, config, formats: weightFormats(model),
    generationConfig: parseGenerationConfig({}, config), settings: NO_CHAT_SETTINGS, bytes: total,
  };
}

/** How many of the model's matrices (embedding, projections, lm_head) are held in each weight format. */
export function weightFormats(model: XverseModel): Record<string, number> {
  const w = model.weights;
  const all = [w.embed, w.lmHead, ...w.layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.gate, l.up, l.down])];
  const out: Record<string, number> = {};
  for (const x of all) out[x.format] = (out[x.format] ?? 0) + 1;
  return out;
}

/**
 * Frees what `m` holds on its backend: its weights' GPU buffers (WebGPU uploads each weight once, on first use),
 * the fused [gate; up] copies included. The model is unusable afterwards. The KV cache and norm vectors a WebGPU
 * backend keeps for it go with the backend's device (destroy()); a page that switches models and wants every
 * buffer back destroys the backend too (web/local-page.ts does). On the TS backend there is nothing to free.
 */
export function disposeModel(m: BrowserModel): void {
  const w = m.model.weights;
  const device = (m.model.backend as { device?: { fusedFor?(gate: Weight): Weight | null | undefined } }).device;
  for (const l of w.layers) {
    const fused = device?.fusedFor?.(l.gate);
    if (fused) releaseGpuWeight(fused);
  }
  for (const x of [w.embed, w.lmHead, ...w.layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.gate, l.up, l.down])]) releaseGpuWeight(x);
}
