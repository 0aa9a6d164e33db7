// The engine's golden tests on WebGPU: stories260K's 255 greedy tokens from BOS against llama2.c's run.c (through
// loadModel({ backend: "webgpu" }) and generate()), bf16 weights against PyTorch within 1e-3, and int8 / int4
// quantized-on-load models equal to the TS backend's logits.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { openSafetensors } from "../../src/io/safetensors.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadConfig } from "../../src/config.js";
import { loadModel } from "../../src/model/load.js";
import { generateText } from "../../src/generate/generate.js";
import { XverseModel } from "../../src/model/xverse.js";
import { toFloat32 } from "../../src/tensor.js";
import { fixture } from "../helpers/peers.js";
import { maxAbsDiff } from "../helpers/compare.js";
import { gpuBackend } from "./gpu.js";

const tiny = JSON.parse(readFileSync(fixture("golden", "tiny-xverse", "golden.json"), "utf8"));
const stories = JSON.parse(readFileSync(fixture("golden", "stories260K", "golden.json"), "utf8"));

test("[webgpu] stories260K: 255 greedy tokens from BOS equal run.c (loadModel backend 'webgpu', f16 KV)", async () => {
  await gpuBackend(); // sets VK_ICD_FILENAMES for SwiftShader when unset
  const { model, tokenizer } = await loadModel(undefined, { backend: "webgpu", onWarning: () => {} });
  assert.equal(model.backend.name, "webgpu");
  const bos = stories.generate.bos;
  const r = await generateText(model, tokenizer, bos.prompt, { greedy: true, maxNewTokens: bos.greedy.length });
  assert.equal(bos.greedy.length, 255);
  assert.deepEqual(r.ids, bos.greedy);
});

test("[webgpu] tiny-xverse bf16 sharded weights: logits_bf16w.chat within 1e-3, weights kept in bf16", async () => {
  const want = toFloat32(openSafetensors(fixture("golden", "tiny-xverse", "golden.safetensors")).read("logits_bf16w.chat"));
  const dir = fixture("golden", "tiny-xverse-bf16-sharded");
  const model = XverseModel.fromSource(loadConfig(dir), openCheckpoint(dir), { kvType: "f32", backend: await gpuBackend() });
  assert.equal(model.weights.layers[0].q.format, "bf16");
  const ids: number[] = tiny.prompts.chat.ids;
  const logits = await model.forwardAsync(ids, model.newCache(ids.length), { logits: "all" });
  const diff = maxAbsDiff(logits, want);
  assert.ok(diff <= 1e-3, `max |Δ| = ${diff}`);
});

test("[webgpu] tiny-xverse quantized on load (int8 rows, int4 groups of 16) gives the TS backend's logits", async () => {
  const dir = fixture("golden", "tiny-xverse");
  const ids: number[] = tiny.prompts.chat.ids;
  for (const q of [{ quantize: 8 as const }, { quantize: 4 as const, groupSize: 16 }]) {
    const gpu = await loadModel(dir, { ...q, backend: await gpuBackend(), kvType: "f32", onWarning: () => {} });
    const cpu = await loadModel(dir, { ...q, backend: "ts", kvType: "f32", onWarning: () => {} });
    const a = await gpu.model.forwardAsync(ids, gpu.model.newCache(ids.length), { logits: "all" });
    const b = cpu.model.forward(ids, cpu.model.newCache(ids.length), { logits: "all" });
    const d = maxAbsDiff(a, b);
    assert.ok(d <= 1e-4, `quantize ${q.quantize}: max |Δ| = ${d}`);
  }
});
