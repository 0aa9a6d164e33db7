/**
 * Full fine-tuning and LoRA against PyTorch (golden_train.*): 8 AdamW steps (lr 1e-3, wd 0.01, clip 0.5) on two
 * right-padded batches with the prompt masked out.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { loadConfig } from "../../src/config.js";
import { openSafetensors } from "../../src/io/safetensors.js";
import { toFloat32 } from "../../src/tensor.js";
import { AdamW, clipGradNorm } from "../../src/train/adamw.js";
import { Tape, type Arr } from "../../src/train/autograd-ops.js";
import { addLora } from "../../src/train/lora.js";
import { XverseTrainModel, type TrainBatch } from "../../src/train/xverse-train-model.js";

const dir = fileURLToPath(new URL("../../../test/fixtures/golden/tiny-xverse/", import.meta.url));
const golden = JSON.parse(readFileSync(dir + "golden_train.json", "utf8"));
const gsrc = openSafetensors(dir + "golden_train.safetensors");
const G = (name: string): Float32Array => toFloat32(gsrc.read(name));

const batches: TrainBatch[] = golden.batches.map((b: { input_ids: number[][]; attention_mask: number[][]; labels: number[][] }) => ({
  B: b.input_ids.length,
  T: b.input_ids[0].length,
  inputIds: Int32Array.from(b.input_ids.flat()),
  attentionMask: Uint8Array.from(b.attention_mask.flat()),
  labels: Int32Array.from(b.labels.flat()),
}));

function load(): XverseTrainModel {
  const src = openSafetensors(dir + "model.safetensors");
  try { return XverseTrainModel.fromSource(loadConfig(dir), src); } finally { src.close(); }
}

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);
function maxAbs(a: Arr, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

interface Run { losses: number[]; norms: number[]; grad0: Map<string, Arr>; model: XverseTrainModel }

function train(model: XverseTrainModel): Run {
  const opt = new AdamW({ lr: golden.optimizer.lr, betas: golden.optimizer.betas, eps: golden.optimizer.eps, weightDecay: golden.optimizer.weight_decay });
  const losses: number[] = [], norms: number[] = [];
  const grad0 = new Map<string, Arr>();
  for (let s = 0; s < 8; s++) {
    model.zeroGrad();
    const t = new Tape();
    const { loss } = model.loss(t, batches[s % 2]);
    t.backward(loss);
    losses.push(loss.data[0]);
    const ps = model.trainable();
    if (s === 0) for (const [n, v] of ps) grad0.set(n, Float64Array.from(v.grad!));
    norms.push(clipGradNorm(ps, golden.max_grad_norm));
    opt.step(ps);
  }
  return { losses, norms, grad0, model };
}

function report(what: string, ours: number[], ref: number[]): void {
  const worst = Math.max(...ours.map((x, i) => rel(x, ref[i])));
  console.log(`# ${what}: max relative error ${worst.toExponential(2)}`);
  assert.ok(worst <= 1e-4, `${what}: ours ${ours} vs PyTorch ${ref}`);
}

test("full fine-tuning: losses, grad norms, first-step gradients, parameters after 8 steps", () => {
  const r = train(load());
  report("full losses", r.losses, golden.full.losses);
  report("full grad norms", r.norms, golden.full.grad_norm_before_clip);
  for (const n of ["lm_head.weight", "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"]) {
    const dg = maxAbs(r.grad0.get(n)!, G("full.grad0." + n));
    const dp = maxAbs(r.model.p(n).data, G("full.after8." + n));
    console.log(`# ${n}: grad0 max|Δ| ${dg.toExponential(2)}, after8 max|Δ| ${dp.toExponential(2)}`);
    assert.ok(dg <= 1e-5, `${n} first-step gradient off by ${dg}`);
    assert.ok(dp <= 1e-5, `${n} after 8 steps off by ${dp}`);
  }
});

test("LoRA r4 α8 on q_proj, v_proj: losses, grad norms, gradients, adapters after 8 steps", () => {
  const model = load();
  model.setBaseTrainable(false);
  const initA = new Map<string, Float32Array>();
  for (const n of gsrc.names()) {
    const m = /^lora\.init\.(.+)\.lora_A$/.exec(n);
    if (m) initA.set(m[1], G(n));
  }
  const mods = addLora(model, { r: golden.lora.r, alpha: golden.lora.alpha, dropout: 0, targets: golden.lora.targets, initA });
  assert.equal(mods.length, 6);
  assert.equal(initA.size, 6);
  const r = train(model);
  report("LoRA losses", r.losses, golden.lora.losses);
  report("LoRA grad norms", r.norms, golden.lora.grad_norm_before_clip);
  let dg = 0, dp = 0;
  for (const m of mods) {
    for (const ab of ["A", "B"] as const) {
      dg = Math.max(dg, maxAbs(r.grad0.get(`${m}.lora_${ab}`)!, G(`lora.grad0.${m}.lora_${ab}`)));
      const l = model.lora.get(m)!;
      dp = Math.max(dp, maxAbs(ab === "A" ? l.A.data : l.B.data, G(`lora.after8.${m}.lora_${ab}`)));
    }
  }
  console.log(`# LoRA grad0 max|Δ| ${dg.toExponential(2)}, after8 max|Δ| ${dp.toExponential(2)}`);
  assert.ok(dg <= 1e-5 && dp <= 1e-5);
});
