// GGUF block types in the WebGPU forward: stories260K exported as Q8_0 / Q4_0 / Q4_K_M (q5_0 here) and loaded with its
// blocks as stored (loadModel on the .gguf, backend "webgpu"; the blocks/ kernels via the registry) gives the TS
// backend's logits on the same file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { exportGguf, type ExportType } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadModel } from "../../src/model/load.js";
import { fixture } from "../helpers/peers.js";
import { normErr } from "../native/random.js";
import { gpuBackend } from "./gpu.js";

const dir = mkdtempSync(join(tmpdir(), "xverse-webgpu-gguf-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const stories = fixture("golden", "stories260K");
const ids = [1, 403, 407, 261, 378, 500, 42];

for (const type of ["q8_0", "q4_0", "q4_k_m"] as ExportType[]) {
  test(`[webgpu] stories260K ${type} GGUF, blocks as stored: logits equal the TS backend's (≤ 1e-5 normalized)`, async () => {
    const path = join(dir, `stories-${type}.gguf`);
    exportGguf(openCheckpoint(stories), loadConfig(stories), join(stories, "tokenizer.json"), path, { type });
    const gpu = await loadModel(path, { backend: await gpuBackend(), kvType: "f32", mmap: false, onWarning: () => {} });
    const cpu = await loadModel(path, { backend: "ts", kvType: "f32", mmap: false, onWarning: () => {} });
    // stories260K's 64 columns are not a whole K-quant block: q4_k_m falls back to the legacy q5_0 / q8_0 types
    assert.equal(gpu.model.weights.layers[0].q.format, type === "q4_k_m" ? "q5_0" : type);
    const a = await gpu.model.forwardAsync(ids, gpu.model.newCache(8), { logits: "all" });
    const b = cpu.model.forward(ids, cpu.model.newCache(8), { logits: "all" });
    const e = normErr(a, b);
    console.log(`${type}: q ${gpu.model.weights.layers[0].q.format}, embed ${gpu.model.weights.embed.format}, lm_head ${gpu.model.weights.lmHead.format}: max |Δ| / max |ref| ${e.toExponential(2)}`);
    assert.ok(e <= 1e-5, `${type}: ${e}`);
  });
}
