/**
 * Random in-memory XVERSE-architecture models (no file), for tests that need shapes the fixtures don't have:
 * long contexts, GQA at odd head counts, rows wide enough for K-quant blocks (multiples of 256).
 * Tensor names and shapes come from the model's own tables (model/weights.ts).
 */
import type { Backend } from "../../src/backend/backend.js";
import { parseConfig, type XverseConfig } from "../../src/config.js";
import type { TensorSource } from "../../src/io/source.js";
import { EMBED_NAME, expectedShapes, LM_HEAD_NAME, layerTensorName, NORM_NAME, PROJECTIONS } from "../../src/model/weights.js";
import type { KvOptions } from "../../src/model/xverse.js";
import { XverseModel } from "../../src/model/xverse.js";
import { rng } from "./rng.js";

export interface RandomShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  vocab: number;
  context: number;
}

/** Every tensor of an XVERSE checkpoint with its shape, in checkpoint order. */
export function xverseTensorShapes(cfg: XverseConfig): Map<string, number[]> {
  const s = expectedShapes(cfg), H = cfg.hiddenSize;
  const shapes = new Map<string, number[]>([[EMBED_NAME, s.embed], [NORM_NAME, [H]], [LM_HEAD_NAME, s.lmHead]]);
  for (let l = 0; l < cfg.numLayers; l++) {
    shapes.set(layerTensorName(l, "inputNorm"), [H]);
    shapes.set(layerTensorName(l, "postNorm"), [H]);
    for (const p of PROJECTIONS) shapes.set(layerTensorName(l, p), s[p]);
  }
  return shapes;
}

/** A source whose f32 tensors are made by fill(name, shape) when read (norms are ones). */
function generatedSource(shapes: Map<string, number[]>, file: string, fill: (name: string, shape: number[], n: number) => Float32Array): TensorSource {
  return {
    names: () => [...shapes.keys()],
    has: (n) => shapes.has(n),
    info: (n) => ({ name: n, dtype: "f32", shape: shapes.get(n)!, file }),
    read: (n) => {
      const s = shapes.get(n)!;
      const len = s.reduce((a, b) => a * b, 1);
      return { dtype: "f32", shape: s, data: s.length === 1 ? new Float32Array(len).fill(1) : fill(n, s, len) };
    },
    metadata: () => ({}),
    close: () => {},
  };
}

/** A model of any shape on `backend`: weights uniform in ±0.08 (the embedding ±1), norms 1. */
export function randomModel(shape: RandomShape, backend: Backend, kv: KvOptions = {}, seed = 1): XverseModel {
  const cfg = parseConfig({
    hidden_size: shape.hidden, num_hidden_layers: shape.layers, num_attention_heads: shape.heads, num_key_value_heads: shape.kvHeads,
    intermediate_size: shape.intermediate, vocab_size: shape.vocab, max_position_embeddings: shape.context, rms_norm_eps: 1e-6,
  }, "random-model");
  const r = rng(seed);
  const source = generatedSource(xverseTensorShapes(cfg), "random-model",
    (n, _s, len) => Float32Array.from({ length: len }, () => (r() * 2 - 1) * (n === EMBED_NAME ? 1 : 0.08)));
  return XverseModel.fromSource(cfg, source, { backend, ...kv });
}

/**
 * cfg's tensors, Gaussian-ish (sum of three uniforms) like a trained model's, scaled by gain / √fan_in so
 * activations stay O(1); the embedding has gain 1; norms are ones. Every tensor is made up front (reads in any
 * order give the same values).
 */
export function randomModelSource(cfg: XverseConfig, seed: number, gain: number, file = "random"): TensorSource {
  const shapes = xverseTensorShapes(cfg), r = rng(seed);
  const data = new Map<string, Float32Array>();
  for (const [n, sh] of shapes) {
    if (sh.length === 1) continue;
    const scale = n === EMBED_NAME ? 1 : gain / Math.sqrt(sh[sh.length - 1]);
    data.set(n, Float32Array.from({ length: sh[0] * sh[1] }, () => (r() + r() + r() - 1.5) * 2 * scale));
  }
  return generatedSource(shapes, file, (n) => data.get(n)!);
}
