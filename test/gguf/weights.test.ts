/** Q4_0 GGUF projections repacked as q4_group(32) run the same model as the dequantized f32 path. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, parseConfig } from "../../src/config.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { openGgufModel } from "../../src/io/gguf-model.js";
import { exportGguf } from "../../src/gguf/export.js";
import { q4_0ToGroupWeight } from "../../src/backend/ts/blocks.js";
import { ggufProjection } from "../../src/gguf/weights.js";
import { dequantize, quantizeQ4_0 } from "../../src/gguf/quants.js";
import { GGML } from "../../src/gguf/types.js";
import { decodeRow, tsBackend } from "../../src/backend/ts/index.js";
import { XverseModel } from "../../src/model/xverse.js";
import { toFloat32 } from "../../src/tensor.js";
import { fixture } from "../helpers/peers.js";
import { rng } from "../helpers/rng.js";
import { tryLoadNativeBackend } from "../../src/backend/native/index.js";
import { loadAddon } from "../../src/backend/native/addon.js";

const native = tryLoadNativeBackend({ threads: 2 }).backend;

const dir = mkdtempSync(join(tmpdir(), "xverse-gguf-w-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

test("q4_0ToGroupWeight is lossless: every row decodes to the Q4_0 dequantization", () => {
  const rows = 3, cols = 64;
  const x = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 5)));
  const q = quantizeQ4_0(x);
  const want = dequantize(GGML.Q4_0, q, rows * cols);
  const w = q4_0ToGroupWeight(q, rows, cols);
  const row = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    decodeRow(w, r, row);
    assert.deepEqual(row, want.subarray(r * cols, (r + 1) * cols), `row ${r}`);
  }
});

test("stories260K Q4_0 GGUF: int4 kernels (q4_group) give the logits of the dequantized weights", () => {
  const stories = fixture("golden", "stories260K");
  const path = join(dir, "s-q4_0.gguf");
  exportGguf(openCheckpoint(stories), loadConfig(stories), join(stories, "tokenizer.json"), path, { type: "q4_0" });
  const ids = [1, 403, 407, 261, 378];
  const run = (quantized: boolean): Float32Array => {
    const g = openGgufModel(path);
    const cfg = parseConfig(g.config, path);
    let repacked = 0;
    const hook = ggufProjection(g);
    const model = XverseModel.fromSource(cfg, g.source, {
      kvType: "f32",
      backend: tsBackend,
      projection: quantized ? (n, s, r, c) => { const w = hook(n, s, r, c); if (w) repacked++; return w; } : undefined,
    });
    if (quantized) assert.equal(repacked, 5 * 6, "q, k, v, o, gate, up of 5 layers (down_proj is F16: row 172)");
    return model.forward(ids, model.newCache(8), { logits: "all" });
  };
  const a = run(false), b = run(true);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  assert.ok(worst < 1e-4, `max |Δ| ${worst}`);
  // and the f16 float path stays close to f32
  const g16 = openGgufModel(path, { floatType: "f16" });
  assert.equal(g16.source.info("model.layers.0.mlp.up_proj.weight").dtype, "f16");
  const f32 = toFloat32(openGgufModel(path).source.read("model.layers.0.mlp.up_proj.weight"));
  const f16 = toFloat32(g16.source.read("model.layers.0.mlp.up_proj.weight"));
  for (let i = 0; i < f32.length; i++) assert.ok(Math.abs(f16[i] - f32[i]) <= Math.abs(f32[i]) * 2 ** -11 + 1e-7);
});

test("loadModel on a Q4_0 GGUF keeps token_embd and output as stored (q4_0) with the dequantized path's logits", async () => {
  const { loadModel } = await import("../../src/model/load.js");
  const stories = fixture("golden", "stories260K");
  const path = join(dir, "s-q4_0-io.gguf");
  exportGguf(openCheckpoint(stories), loadConfig(stories), join(stories, "tokenizer.json"), path, { type: "q4_0" });
  const { model } = await loadModel(path, { backend: "ts", kvType: "f32", onWarning: () => {} });
  assert.equal(model.weights.embed.format, "q4_0");
  assert.equal(model.weights.lmHead.format, "q4_0");
  assert.equal(model.weights.lmHead.data.byteLength, (512 * 64 * 18) / 32, "4.5 bits per weight, not 32");
  const g = openGgufModel(path);
  const floats = XverseModel.fromSource(parseConfig(g.config, path), g.source, { kvType: "f32", backend: tsBackend });
  const ids = [1, 403, 407, 261, 378, 280, 300];
  const a = model.forward(ids, model.newCache(8), { logits: "all" });
  const b = floats.forward(ids, floats.newCache(8), { logits: "all" });
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  assert.ok(d <= 1e-4, `max |Δ| ${d}`);
});

test("the native Q4_0 → q4_group repack equals q4_0ToGroupWeight; a loaded Q4_0 GGUF runs repacked where the ISA prefers it, else as stored", { skip: native ? false : "native addon not available" }, async () => {
  const addon = loadAddon().addon!;
  const r = rng(17);
  for (const [rows, cols] of [[1, 32], [7, 96], [33, 256]] as const) {
    const x = Float32Array.from({ length: rows * cols }, () => (r() - 0.5) * 4);
    const q = quantizeQ4_0(x);
    const want = q4_0ToGroupWeight(q, rows, cols);
    const data = new Uint8Array((rows * cols) / 2), scales = new Float32Array((rows * cols) / 32);
    addon.repackQ4_0!(q, rows, cols, data, scales);
    assert.deepEqual(data, want.data, `[${rows}, ${cols}] data`);
    assert.deepEqual(scales, want.scales, `[${rows}, ${cols}] scales`);
    const got = native!.prepareWeight!({ format: "q4_0", rows, cols, data: q });
    assert.equal(got.format, native!.repacksQ4_0 ? "q4_group" : "q4_0", `${native!.isa}`);
    if (native!.repacksQ4_0) assert.deepEqual(got.data, want.data);
  }
  // a loaded Q4_0 GGUF on the native backend: projections and lm_head on the int4 kernels, or the blocks as stored
  const { loadModel } = await import("../../src/model/load.js");
  const stories = fixture("golden", "stories260K");
  const path = join(dir, "s-q4_0-native.gguf");
  exportGguf(openCheckpoint(stories), loadConfig(stories), join(stories, "tokenizer.json"), path, { type: "q4_0" });
  const { model } = await loadModel(path, { backend: "native", kvType: "f32", onWarning: () => {} });
  const want = native!.repacksQ4_0 ? "q4_group" : "q4_0";
  assert.equal(model.weights.lmHead.format, want);
  assert.equal(model.weights.layers[0].q.format, want);
});
