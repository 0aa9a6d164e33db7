/** Small random models and batches shared by the training tests. */
import { parseConfig, type XverseConfig } from "../../src/config.js";
import type { Arr } from "../../src/train/autograd-ops.js";
import { Rng } from "../../src/train/rng.js";
import { paramShapes, XverseTrainModel, type TrainBatch } from "../../src/train/xverse-train-model.js";

export function tinyConfig(over: Record<string, unknown> = {}): XverseConfig {
  return parseConfig({
    vocab_size: 11, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 2, num_attention_heads: 2,
    num_key_value_heads: 1, rms_norm_eps: 1e-6, max_position_embeddings: 64, ...over,
  });
}

export function randomModel(cfg: XverseConfig, seed = 1, dtype: "f32" | "f64" = "f64"): XverseTrainModel {
  const rng = new Rng(seed);
  const m = new Map<string, Arr>();
  for (const [name, shape] of paramShapes(cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const a = dtype === "f64" ? new Float64Array(n) : new Float32Array(n);
    const norm = name.endsWith("norm.weight");
    for (let i = 0; i < n; i++) a[i] = norm ? 0.5 + rng.next() : 0.3 * rng.normal();
    m.set(name, a);
  }
  return new XverseTrainModel(cfg, m);
}

/** Two rows: one right-padded with a prompt masked out, one full. */
export function tinyBatch(cfg: XverseConfig): TrainBatch {
  const B = 2, T = 6, V = cfg.vocabSize;
  const inputIds = Int32Array.from([3, 5, 7, 2, 0, 0, 1, 4, 9, 6, 8, 3].map((x) => x % V));
  const attentionMask = Uint8Array.from([1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]);
  const labels = Int32Array.from([-100, -100, 7 % V, 2, -100, -100, -100, 4, 9 % V, 6, 8 % V, 3]);
  return { B, T, inputIds, attentionMask, labels };
}
