/**
 * Weight names are data: one table maps checkpoint names (HF / XVERSE) to model slots, and loading is strict —
 * a missing or misshaped tensor is an error naming it; known-stale buffers are skipped on purpose.
 */
import type { Backend, Weight } from "../backend/backend.js";
import type { XverseConfig } from "../config.js";
import { XverseError } from "../errors.js";
import type { TensorSource } from "../io/source.js";
import { toFloat32, type Tensor } from "../tensor.js";
import { isSkippedTensor } from "../io/skipped.js";

export interface LayerWeights {
  inputNorm: Float32Array; // (hidden)
  q: Weight; // (nHeads·headDim, hidden)
  k: Weight; // (nKvHeads·headDim, hidden)
  v: Weight; // (nKvHeads·headDim, hidden)
  o: Weight; // (hidden, nHeads·headDim)
  postNorm: Float32Array; // (hidden)
  gate: Weight; // (intermediate, hidden)
  up: Weight; // (intermediate, hidden)
  down: Weight; // (hidden, intermediate)
}

export interface ModelWeights {
  embed: Weight; // (vocab, hidden): rows are looked up, never multiplied
  layers: LayerWeights[];
  norm: Float32Array; // (hidden)
  lmHead: Weight; // (vocab, hidden), never tied to embed
}

/** The seven projections of every layer: what XVERSE's quantizer touches. */
export const PROJECTIONS = ["q", "k", "v", "o", "gate", "up", "down"] as const;
export type Projection = (typeof PROJECTIONS)[number];

/** Checkpoint name of a layer slot. */
export function layerTensorName(i: number, slot: Projection | "inputNorm" | "postNorm"): string {
  const p = `model.layers.${i}.`;
  switch (slot) {
    case "inputNorm": return p + "input_layernorm.weight";
    case "postNorm": return p + "post_attention_layernorm.weight";
    case "q": case "k": case "v": case "o": return `${p}self_attn.${slot}_proj.weight`;
    default: return `${p}mlp.${slot}_proj.weight`;
  }
}

export const EMBED_NAME = "model.embed_tokens.weight";
export const NORM_NAME = "model.norm.weight";
export const LM_HEAD_NAME = "lm_head.weight";


/** Expected [rows, cols] of every 2-D slot. */
export function expectedShapes(c: XverseConfig): Record<Projection | "embed" | "lmHead", [number, number]> {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  return {
    embed: [c.vocabSize, c.hiddenSize],
    lmHead: [c.vocabSize, c.hiddenSize],
    q: [qDim, c.hiddenSize],
    k: [kvDim, c.hiddenSize],
    v: [kvDim, c.hiddenSize],
    o: [c.hiddenSize, qDim],
    gate: [c.intermediateSize, c.hiddenSize],
    up: [c.intermediateSize, c.hiddenSize],
    down: [c.hiddenSize, c.intermediateSize],
  };
}

/** A float tensor as a dense Weight, keeping f32 / bf16 / f16 storage as it is (no copy). */
export function denseWeight(name: string, t: Tensor, rows: number, cols: number, file = ""): Weight {
  if (t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== cols) {
    throw new XverseError("bad_checkpoint", `tensor ${name}${file ? ` in ${file}` : ""} has shape [${t.shape}], expected [${rows}, ${cols}] from config.json`);
  }
  switch (t.dtype) {
    case "f32": case "bf16": case "f16":
      return { format: t.dtype, rows, cols, data: t.data as Float32Array | Uint16Array };
    case "f64":
      return { format: "f32", rows, cols, data: toFloat32(t) };
    default:
      throw new XverseError("bad_checkpoint", `tensor ${name}${file ? ` in ${file}` : ""} has dtype ${t.dtype}; weights must be f32, f16 or bf16`);
  }
}

export interface WeightLoadOptions {
  backend: Backend;
  /**
   * Replaces the default dense conversion for a projection (e.g. quantize while loading, or read a
   * pre-quantized tensor pair). Returns null to keep the default.
   */
  projection?: (name: string, source: TensorSource, rows: number, cols: number) => Weight | null;
  /**
   * For embed_tokens and lm_head: a file that stores them quantized (a Q4_0 GGUF) runs them as stored instead of
   * widening them to floats. Returns null to keep the default. (Not the quantize-on-load hook: XVERSE's scheme
   * keeps these two in 16 bits.)
   */
  stored?: (name: string, source: TensorSource, rows: number, cols: number) => Weight | null;
  /**
   * Called with a tensor's name when the backend's prepareWeight replaced the hook's data with a copy (e.g. the
   * native Q4_0 repack): the loader may drop the source bytes (a mapped file's pages) from memory.
   */
  onCopied?: (name: string) => void;
  /** Called once per checkpoint tensor the model does not use (besides stale rotary buffers). */
  onUnused?: (names: string[]) => void;
}

/** Reads every tensor the model needs from `source`, one at a time, checking names, shapes and dtypes. */
export function loadWeights(cfg: XverseConfig, source: TensorSource, opts: WeightLoadOptions): ModelWeights {
  const used = new Set<string>();
  const shapes = expectedShapes(cfg);
  const prep = (w: Weight) => opts.backend.prepareWeight?.(w) ?? w;

  const read = (name: string): Tensor => {
    if (!source.has(name)) {
      throw new XverseError("bad_checkpoint", `tensor ${name} is missing from the checkpoint (it has ${source.names().length} tensors); is this an XVERSE/LLaMA model matching its config.json?`);
    }
    used.add(name);
    return source.read(name);
  };
  const vector = (name: string): Float32Array => {
    const t = read(name);
    if (t.shape.length !== 1 || t.shape[0] !== cfg.hiddenSize) {
      throw new XverseError("bad_checkpoint", `tensor ${name} in ${source.info(name).file} has shape [${t.shape}], expected [${cfg.hiddenSize}]`);
    }
    return Float32Array.from(toFloat32(t));
  };
  const matrix = (name: string, [rows, cols]: [number, number]): Weight =>
    prep(denseWeight(name, read(name), rows, cols, source.info(name).file));
  const custom = (name: string, shape: [number, number], hook: WeightLoadOptions["projection"]): Weight => {
    const w = hook?.(name, source, shape[0], shape[1]);
    if (w) {
      used.add(name);
      const stem = name.replace(/\.weight$/, ".");
      for (const n of source.names()) {
        if (n.startsWith(name + "_") || n === stem + "weight_scale") used.add(n);
        // GPTQ / AWQ: <stem>qweight, qzeros, scales, g_idx (io/gptq.ts)
        else if (n.startsWith(stem) && /^(qweight|qzeros|scales|g_idx)$/.test(n.slice(stem.length))) used.add(n);
      }
      const p = prep(w);
      if (p.data !== w.data) opts.onCopied?.(name);
      return p;
    }
    return matrix(name, shape);
  };
  const projection = (name: string, shape: [number, number]): Weight => custom(name, shape, opts.projection);

  const embed = custom(EMBED_NAME, shapes.embed, opts.stored);
  const layers: LayerWeights[] = [];
  for (let i = 0; i < cfg.numLayers; i++) {
    layers.push({
      inputNorm: vector(layerTensorName(i, "inputNorm")),
      q: projection(layerTensorName(i, "q"), shapes.q),
      k: projection(layerTensorName(i, "k"), shapes.k),
      v: projection(layerTensorName(i, "v"), shapes.v),
      o: projection(layerTensorName(i, "o"), shapes.o),
      postNorm: vector(layerTensorName(i, "postNorm")),
      gate: projection(layerTensorName(i, "gate"), shapes.gate),
      up: projection(layerTensorName(i, "up"), shapes.up),
      down: projection(layerTensorName(i, "down"), shapes.down),
    });
  }
  const norm = vector(NORM_NAME);
  const lmHead = custom(LM_HEAD_NAME, shapes.lmHead, opts.stored);
  const unused = source.names().filter((n) => !used.has(n) && !isSkippedTensor(n));
  if (unused.length) opts.onUnused?.(unused);
  return { embed, layers, norm, lmHead };
}
