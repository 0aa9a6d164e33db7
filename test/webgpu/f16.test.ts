// The shader-f16 paths of the WebGPU backend, on Mesa's lavapipe (a CPU Vulkan driver that has shader-f16;
// SwiftShader, which the other WebGPU tests use, has not):
// - with shader-f16 every module converts f16 → f32 in hardware (registry.ts withShaderF16): checked on all
//   63,488 finite f16 bit patterns against the exact bit decode, and by the dense, block and KV kernels'
//   parity with the TS reference;
// - the tiled prefill multiplies in f16 (blocks/tiled.ts): every block format within 3e-3 normalized of the TS
//   reference (f16 rounds to 2^-11 relative per product), and stories260K Q8_0 GGUF prefill logits within 3e-3
//   with the same top token at every position; { f16: false } keeps them to 1e-5.
// In CI (CI set) a missing lavapipe or shader-f16 fails with what to install; elsewhere the tests skip.
import "./lavapipe.js"; // first: VK_ICD_FILENAMES → lavapipe before ./gpu.js would pick SwiftShader
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Weight } from "../../src/backend/backend.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { BLOCK_GEOMETRY } from "../../src/backend/ts/blocks.js";
import { BLOCK_FORMATS } from "../../src/backend/webgpu/blocks/index.js";
import { runEmbed, runMatmul } from "../../src/backend/webgpu/blocks/run.js";
import { loadConfig } from "../../src/config.js";
import { exportGguf } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadModel } from "../../src/model/load.js";
import { argmax } from "../../src/generate/processors.js";
import { f16ToF32 } from "../../src/tensor.js";
import { fixture } from "../helpers/peers.js";
import { normErr, randArray, randBlockWeight, randWeight, rng } from "../native/random.js";
import { gpuBackend } from "./gpu.js";
import { LAVAPIPE_ICD } from "./lavapipe.js";

const F16_BOUND = 3e-3;

const why = !LAVAPIPE_ICD
  ? "lavapipe is not installed (Debian: mesa-vulkan-drivers ≥ 24, from bookworm-backports on Debian 12)"
  : await gpuBackend().then((be) => (be.ctx.hasF16 ? null : `the adapter (${be.ctx.adapter.name}) has no shader-f16 (Mesa ≥ 24 needed)`),
    (e: Error) => e.message);
if (why && process.env.CI) throw new Error(`shader-f16 tests: ${why}`);
const skip = why ?? false;

test("[webgpu f16] the hardware f16 → f32 conversion equals the exact decode on every finite f16", { skip }, async () => {
  const be = await gpuBackend({ style: "thread" });
  assert.equal(be.ctx.hasF16, true);
  // an f16 weight of one column: y[r] = w[r] · 1, exact in f32
  const bits: number[] = [];
  for (let h = 0; h < 65536; h++) if (((h >> 10) & 31) !== 31) bits.push(h);
  const w: Weight = { format: "f16", rows: bits.length, cols: 1, data: Uint16Array.from(bits) };
  const got = await be.kernels.matmul(new Float32Array([1]), w, 1);
  let bad = 0;
  for (let i = 0; i < bits.length; i++) if (!Object.is(got[i], f16ToF32(bits[i])) && !(got[i] === 0 && f16ToF32(bits[i]) === 0)) bad++;
  assert.equal(bad, 0, `${bad} of ${bits.length} patterns differ (subnormals flushed?)`);
});

test("[webgpu f16] dense matmul (f16, bf16, q8_row, q4_group) with shader-f16 equals the TS reference within 1e-5", { skip }, async () => {
  for (const style of ["thread", "workgroup"] as const) {
    const be = await gpuBackend({ style });
    const r = rng(31);
    for (const format of ["f16", "bf16", "q8_row", "q4_group"] as const) {
      const w = randWeight(format, 37, 96, r, 32);
      for (const T of [1, 17]) {
        const x = randArray(T * 96, r);
        const ref = new Float32Array(T * 37);
        tsBackend.matmul(ref, x, w, T);
        const e = normErr(await be.kernels.matmul(x, w, T), ref);
        assert.ok(e <= 1e-5, `${style} ${format} T=${T}: ${e}`);
      }
    }
  }
});

test("[webgpu f16] tiled prefill with f16 products: every block format within 3e-3 of the TS reference; f32 products within 1e-5", { skip }, async () => {
  const be = await gpuBackend();
  const dev = be.ctx.device;
  const r = rng(41);
  const worst: string[] = [];
  for (const fmt of BLOCK_FORMATS) {
    const cols = BLOCK_GEOMETRY[fmt].values === 32 ? 96 : 512;
    const w = randBlockWeight(fmt, 70, cols, r); // 70 rows: a full 64-row tile and a partial one
    for (const T of [17, 40]) {
      const x = randArray(T * cols, r);
      const ref = new Float32Array(T * w.rows);
      tsBackend.matmul(ref, x, w, T);
      const e16 = normErr(await runMatmul(dev, w, x, T, { variant: { f16: true } }), ref);
      const e32 = normErr(await runMatmul(dev, w, x, T, { variant: { f16: false } }), ref);
      worst.push(`${fmt} T=${T}: f16 ${e16.toExponential(2)}, f32 ${e32.toExponential(2)}`);
      assert.ok(e16 <= F16_BOUND, `${fmt} T=${T} f16 products: ${e16}`);
      assert.ok(e32 <= 1e-5, `${fmt} T=${T} f32 products: ${e32}`);
    }
  }
  console.log(`tiled prefill on ${be.ctx.adapter.name} (max |Δ| / max |ref|):\n  ${worst.join("\n  ")}`);
});

test("[webgpu f16] tiled prefill of f32 / f16 / bf16 weights with f16 products within 3e-3 of the TS reference", { skip }, async () => {
  const be = await gpuBackend({ style: "workgroup", f16: true });
  const r = rng(47);
  for (const format of ["f32", "f16", "bf16"] as const) {
    const w = randWeight(format, 70, 96, r);
    const x = randArray(40 * 96, r);
    const ref = new Float32Array(40 * w.rows);
    tsBackend.matmul(ref, x, w, 40);
    const e = normErr(await be.kernels.matmul(x, w, 40), ref);
    assert.ok(e <= F16_BOUND, `${format}: ${e}`);
  }
});

test("[webgpu f16] block embed rows with edge f16 scales (subnormal, ±largest) decode exactly with the hardware conversion", { skip }, async () => {
  const be = await gpuBackend();
  const r = rng(43);
  for (const fmt of ["q4_0", "q8_0", "q4_k", "q6_k"] as const) {
    const { bytes, f16 } = BLOCK_GEOMETRY[fmt];
    const w = randBlockWeight(fmt, 3, BLOCK_GEOMETRY[fmt].values * 7, r);
    const b = w.data as Uint8Array;
    [0x0001, 0x83ff, 0x8000, 0x7bff, 0xfbff, 0x0400].forEach((h, i) => { b[i * bytes + f16[0]] = h & 255; b[i * bytes + f16[0] + 1] = h >> 8; });
    const got = await runEmbed(be.ctx.device, w, [0], w.cols);
    const ref = new Float32Array(w.cols);
    tsBackend.embedRow(ref, w, 0);
    assert.ok(normErr(got, ref) <= 1e-7, `${fmt}: ${normErr(got, ref)}`);
  }
});

test("[webgpu f16] stories260K Q8_0 GGUF, 40-token prefill on the GPU path: f16 products within 3e-3 (same top token everywhere), f32 within 1e-5 (f16 KV 2e-4)", { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "xverse-webgpu-f16-"));
  try {
    const stories = fixture("golden", "stories260K");
    const path = join(dir, "stories-q8_0.gguf");
    exportGguf(openCheckpoint(stories), loadConfig(stories), join(stories, "tokenizer.json"), path, { type: "q8_0" });
    const r = rng(5);
    const ids = Array.from({ length: 40 }, () => 3 + Math.floor(r() * 500));
    for (const kvType of ["f32", "f16"] as const) {
      const cpu = await loadModel(path, { backend: "ts", kvType, mmap: false, onWarning: () => {} });
      const ref = cpu.model.forward(ids, cpu.model.newCache(48), { logits: "all" });
      const vocab = ref.length / ids.length;
      for (const f16 of kvType === "f32" ? [true, false] : [false]) {
        // "workgroup": the GPU kernels (the tiled prefill), not the thread style a CPU driver gets by default;
        // f16 KV: keys and values read back with the hardware conversion
        const gpu = await loadModel(path, { backend: await gpuBackend({ style: "workgroup", f16 }), kvType, mmap: false, onWarning: () => {} });
        const got = await gpu.model.forwardAsync(ids, gpu.model.newCache(48), { logits: "all" });
        const e = normErr(got, ref);
        console.log(`stories260K q8_0 prefill, ${kvType} KV, f16 products ${f16}: max |Δ| / max |ref| ${e.toExponential(2)}`);
        // f16 KV: a key the GPU computes a last bit apart from the CPU's can round to the neighbouring f16
        // (2^-11 relative), so that run is held to 2e-4, not 1e-5
        assert.ok(e <= (f16 ? F16_BOUND : kvType === "f16" ? 2e-4 : 1e-5), `${kvType} KV, f16 ${f16}: ${e}`);
        for (let t = 0; t < ids.length; t++) {
          assert.equal(argmax(got.subarray(t * vocab, (t + 1) * vocab)), argmax(ref.subarray(t * vocab, (t + 1) * vocab)), `f16 ${f16}: top token at ${t}`);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
