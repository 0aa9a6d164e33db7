import { test } from "node:test";
import assert from "node:assert/strict";
import { crossEntropy, linear, Tape, Var } from "../../src/train/autograd-ops.js";
import { headCrossEntropy } from "../../src/train/head-loss.js";
import { addLora } from "../../src/train/lora.js";
import { Rng } from "../../src/train/rng.js";
import type { XverseTrainModel, TrainBatch } from "../../src/train/xverse-train-model.js";
import { randomModel, tinyBatch, tinyConfig } from "./helpers.js";

function lossOf(m: XverseTrainModel, b: TrainBatch): number {
  return m.loss(new Tape(false), b).loss.data[0];
}

/** Compares analytic gradients with central differences on a few entries of every trainable tensor. */
function gradCheck(m: XverseTrainModel, b: TrainBatch, picks = 6): number {
  m.zeroGrad();
  const t = new Tape();
  t.backward(m.loss(t, b).loss);
  const rng = new Rng(7);
  let worst = 0;
  for (const [name, v] of m.trainable()) {
    const g = (v as Var).grad;
    assert.ok(g, `${name} got no gradient`);
    for (let k = 0; k < picks; k++) {
      const i = Math.floor(rng.next() * v.data.length);
      const h = 1e-5, x0 = v.data[i];
      v.data[i] = x0 + h; const lp = lossOf(m, b);
      v.data[i] = x0 - h; const lm = lossOf(m, b);
      v.data[i] = x0;
      const fd = (lp - lm) / (2 * h);
      const err = Math.abs(fd - g[i]) / Math.max(1e-3, Math.abs(fd) + Math.abs(g[i]));
      worst = Math.max(worst, err);
      assert.ok(err < 1e-6, `${name}[${i}]: analytic ${g[i]} vs finite difference ${fd}`);
    }
  }
  return worst;
}

test("full-model gradients match finite differences (GQA, padding, masked prompt)", () => {
  const cfg = tinyConfig();
  gradCheck(randomModel(cfg), tinyBatch(cfg));
});

test("no-GQA model, linear RoPE scaling, left-padded row with explicit positions", () => {
  const cfg = tinyConfig({ num_key_value_heads: 2, rope_scaling: { type: "linear", factor: 2 } });
  const b = tinyBatch(cfg);
  // row 0 left-padded: its first query sees no key at all (output zeros)
  b.attentionMask = Uint8Array.from([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  b.positions = Int32Array.from([0, 0, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5]);
  b.labels = Int32Array.from([-100, -100, -100, 4, 5, 6, -100, 4, 9, 6, 8, 3]);
  gradCheck(randomModel(cfg, 3), b);
});

test("activation recomputation gives the same gradients", () => {
  const cfg = tinyConfig();
  const m = randomModel(cfg, 5), b = tinyBatch(cfg);
  const run = (recompute: boolean): Map<string, Float64Array> => {
    m.zeroGrad();
    const t = new Tape();
    t.backward(m.loss(t, b, { recompute }).loss);
    return new Map(m.trainable().map(([n, v]) => [n, Float64Array.from(v.grad!)]));
  };
  const a = run(false), c = run(true);
  for (const [n, g] of a) assert.deepEqual(c.get(n), g, n);
});

test("LoRA adapter gradients match finite differences (base frozen)", () => {
  const cfg = tinyConfig();
  const m = randomModel(cfg, 9);
  m.setBaseTrainable(false);
  addLora(m, { r: 2, alpha: 4, dropout: 0, targets: ["q_proj", "v_proj", "down_proj", "lm_head"], seed: 1, dtype: "f64" });
  // B starts at zero; give it values so every path is exercised
  const rng = new Rng(4);
  for (const l of m.lora.values()) for (let i = 0; i < l.B.data.length; i++) l.B.data[i] = 0.2 * rng.normal();
  gradCheck(m, tinyBatch(cfg));
  assert.equal(m.trainable().length, 2 * 3 * cfg.numLayers + 2);
});

test("recomputation replays LoRA dropout masks exactly", () => {
  const cfg = tinyConfig();
  const grads = (recompute: boolean): Float64Array[] => {
    const m = randomModel(cfg, 9);
    m.setBaseTrainable(false);
    addLora(m, { r: 2, alpha: 4, dropout: 0.3, targets: ["q_proj", "v_proj"], seed: 1, dtype: "f64" });
    for (const l of m.lora.values()) l.B.data.fill(0.1);
    m.rng = new Rng(123);
    const t = new Tape();
    t.backward(m.loss(t, tinyBatch(cfg), { recompute, train: true }).loss);
    return m.trainable().map(([, v]) => Float64Array.from(v.grad!));
  };
  assert.deepEqual(grads(true), grads(false));
});

test("fused lm_head + cross-entropy (chunked, masked rows skipped) equals linear + crossEntropy", () => {
  const N = 9, D = 5, V = 7, rng = new Rng(3);
  const mk = (n: number): Float64Array => Float64Array.from({ length: n }, () => rng.normal());
  const targets = Int32Array.from([-100, 3, 0, -100, 6, 6, 1, -100, 2]);
  const run = (fused: boolean): [number, Float64Array, Float64Array] => {
    const x = new Var(mk(N * D), true), W = new Var(mk(V * D), true);
    rng.state = 3;
    x.data.set(mk(N * D)); W.data.set(mk(V * D));
    const t = new Tape();
    const r = fused ? headCrossEntropy(t, x, W, targets, D, V, 2) : crossEntropy(t, linear(t, x, W, D, V), targets, V);
    t.backward(r.loss);
    return [r.loss.data[0], x.grad as Float64Array, W.grad as Float64Array];
  };
  const [l1, gx1, gw1] = run(true), [l2, gx2, gw2] = run(false);
  assert.ok(Math.abs(l1 - l2) < 1e-12);
  for (let i = 0; i < gx1.length; i++) assert.ok(Math.abs(gx1[i] - gx2[i]) < 1e-12);
  for (let i = 0; i < gw1.length; i++) assert.ok(Math.abs(gw1[i] - gw2[i]) < 1e-12);
});
