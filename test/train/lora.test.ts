/** LoRA in PEFT's layout; merged weights vs adapters applied on the fly; our training forward vs the inference model. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { tsBackend } from "../../src/backend/ts/index.js";
import { loadConfig } from "../../src/config.js";
import { openSafetensors } from "../../src/io/safetensors.js";
import { XverseModel } from "../../src/model/xverse.js";
import { Tape } from "../../src/train/autograd-ops.js";
import { addLora, loadPeftAdapter, mergeLora, savePeftAdapter } from "../../src/train/lora.js";
import { withPeftAdapter } from "../../src/io/peft-adapter.js";
import { Rng } from "../../src/train/rng.js";
import { XverseTrainModel, type TrainBatch } from "../../src/train/xverse-train-model.js";

const dir = fileURLToPath(new URL("../../../test/fixtures/golden/tiny-xverse/", import.meta.url));
const cfg = loadConfig(dir);
function load(): XverseTrainModel {
  const src = openSafetensors(dir + "model.safetensors");
  try { return XverseTrainModel.fromSource(cfg, src); } finally { src.close(); }
}
const tokens = [451, 344, 268, 1606, 1581, 239, 172, 178, 16, 16, 1622, 984, 376, 659, 1606, 1581];
const batch: TrainBatch = { B: 1, T: tokens.length, inputIds: Int32Array.from(tokens) };
const logits = (m: XverseTrainModel): Float64Array => m.forward(new Tape(false), batch).data as Float64Array;
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function withAdapters(): XverseTrainModel {
  const m = load();
  m.setBaseTrainable(false);
  addLora(m, { r: 4, alpha: 8, dropout: 0.05, targets: ["q_proj", "v_proj", "down_proj"], seed: 3 });
  const rng = new Rng(11);
  for (const l of m.lora.values()) for (let i = 0; i < l.B.data.length; i++) l.B.data[i] = 0.05 * rng.normal();
  return m;
}

test("training forward gives the inference model's logits", () => {
  const src = openSafetensors(dir + "model.safetensors");
  const inf = XverseModel.fromSource(cfg, src, { kvType: "f32", backend: tsBackend });
  src.close();
  const ref = inf.forward(tokens, inf.newCache(tokens.length), { logits: "all" });
  const d = maxDiff(logits(load()), ref);
  console.log(`# training vs inference forward: max |Δlogit| ${d.toExponential(2)}`);
  assert.ok(d <= 1e-4, `max |Δ| ${d}`);
});

test("PEFT layout: file names, tensor names and shapes, adapter_config.json", () => {
  const m = withAdapters();
  const out = mkdtempSync(join(tmpdir(), "xverse-lora-"));
  try {
    savePeftAdapter(m, out, "tiny-xverse");
    assert.deepEqual(readdirSync(out).sort(), ["adapter_config.json", "adapter_model.safetensors"]);
    const c = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
    assert.equal(c.peft_type, "LORA");
    assert.equal(c.task_type, "CAUSAL_LM");
    assert.equal(c.r, 4);
    assert.equal(c.lora_alpha, 8);
    assert.equal(c.lora_dropout, 0.05);
    assert.deepEqual(c.target_modules.sort(), ["down_proj", "q_proj", "v_proj"]);
    const st = openSafetensors(join(out, "adapter_model.safetensors"));
    assert.equal(st.names().length, 3 * 2 * cfg.numLayers);
    assert.deepEqual(st.info("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").shape, [4, 48]);
    assert.deepEqual(st.info("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").shape, [48, 4]);
    assert.deepEqual(st.info("base_model.model.model.layers.2.mlp.down_proj.lora_A.weight").shape, [4, 128]);
    assert.deepEqual(st.info("base_model.model.model.layers.2.mlp.down_proj.lora_B.weight").shape, [48, 4]);
    st.close();
    // loading gives back exactly the same model
    const m2 = load();
    m2.setBaseTrainable(false);
    assert.equal(loadPeftAdapter(m2, out).length, 9);
    assert.equal(maxDiff(logits(m2), logits(m)), 0);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("merged weights give the logits of the adapters applied on the fly (within 1e-5)", () => {
  const m = withAdapters();
  const onTheFly = logits(m);
  const base = logits(load());
  assert.ok(maxDiff(onTheFly, base) > 1e-3, "the adapters must change the output for this test to mean anything");
  mergeLora(m);
  assert.equal(m.lora.size, 0);
  const d = maxDiff(logits(m), onTheFly);
  console.log(`# merged vs on-the-fly: max |Δlogit| ${d.toExponential(2)}`);
  assert.ok(d <= 1e-5, `max |Δ| ${d}`);
});

test("withPeftAdapter: the inference model on base + adapter equals the merged training model", () => {
  const m = withAdapters();
  const out = mkdtempSync(join(tmpdir(), "xverse-lora-src-"));
  try {
    savePeftAdapter(m, out);
    const src = withPeftAdapter(openSafetensors(dir + "model.safetensors"), out);
    const inf = XverseModel.fromSource(cfg, src, { kvType: "f32", backend: tsBackend });
    src.close();
    const ref = inf.forward(tokens, inf.newCache(tokens.length), { logits: "all" });
    mergeLora(m);
    const d = maxDiff(logits(m), ref);
    console.log(`# inference on base + PEFT adapter vs merged: max |Δlogit| ${d.toExponential(2)}`);
    assert.ok(d <= 1e-4, `max |Δ| ${d}`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
