/**
 * A random in-memory XVERSE-architecture model of any shape (no file), for tests that need sizes the fixtures
 * don't have (long contexts, GQA at odd head counts). Weights ~ N(0, 0.02)-ish uniform, norms 1.
 */
import type { Backend } from "../../src/backend/backend.js";
import { parseConfig } from "../../src/config.js";
import type { TensorSource } from "../../src/io/source.js";
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

export function randomModel(shape: RandomShape, backend: Backend, kv: KvOptions = {}, seed = 1): XverseModel {
  const cfg = parseConfig({
    hidden_size: shape.hidden, num_hidden_layers: shape.layers, num_attention_heads: shape.heads, num_key_value_heads: shape.kvHeads,
    intermediate_size: shape.intermediate, vocab_size: shape.vocab, max_position_embeddings: shape.context, rms_norm_eps: 1e-6,
  }, "random-model");
  const hd = shape.hidden / shape.heads;
  const shapes = new Map<string, number[]>([
    ["model.embed_tokens.weight", [shape.vocab, shape.hidden]],
    ["model.norm.weight", [shape.hidden]],
    ["lm_head.weight", [shape.vocab, shape.hidden]],
  ]);
  for (let l = 0; l < shape.layers; l++) {
    const p = `model.layers.${l}.`;
    shapes.set(p + "input_layernorm.weight", [shape.hidden]);
    shapes.set(p + "post_attention_layernorm.weight", [shape.hidden]);
    shapes.set(p + "self_attn.q_proj.weight", [shape.heads * hd, shape.hidden]);
    shapes.set(p + "self_attn.k_proj.weight", [shape.kvHeads * hd, shape.hidden]);
    shapes.set(p + "self_attn.v_proj.weight", [shape.kvHeads * hd, shape.hidden]);
    shapes.set(p + "self_attn.o_proj.weight", [shape.hidden, shape.heads * hd]);
    shapes.set(p + "mlp.gate_proj.weight", [shape.intermediate, shape.hidden]);
    shapes.set(p + "mlp.up_proj.weight", [shape.intermediate, shape.hidden]);
    shapes.set(p + "mlp.down_proj.weight", [shape.hidden, shape.intermediate]);
  }
  const r = rng(seed);
  const source: TensorSource = {
    names: () => [...shapes.keys()],
    has: (n) => shapes.has(n),
    info: (n) => ({ name: n, dtype: "f32", shape: shapes.get(n)!, file: "random-model" }),
    read: (n) => {
      const s = shapes.get(n)!;
      const len = s.reduce((a, b) => a * b, 1);
      const data = n.endsWith("norm.weight") ? new Float32Array(len).fill(1) : Float32Array.from({ length: len }, () => (r() * 2 - 1) * (n.includes("embed") ? 1 : 0.08));
      return { dtype: "f32", shape: s, data };
    },
    close: () => {},
  };
  return XverseModel.fromSource(cfg, source, { backend, ...kv });
}
