/**
 * WebGPU throughput next to the native CPU backend: prefill and decode tokens/s on whatever adapter is present,
 * the adapter's name, features and limits, and the max |Δ| of the WebGPU logits against the CPU ones (on
 * SwiftShader only that column matters; on a real GPU the tok/s are the number).
 * Usage: npm run bench:webgpu [-- --large] [--repeats R] [--style workgroup|thread] [--no-f16]
 *   --large   also the synthetic ~110M XVERSE-shaped model (f16 weights; slow on SwiftShader)
 *   --style   force the kernel style (default: thread on CPU drivers, workgroup on GPUs): workgroup on a CPU
 *             driver runs the GPU kernels (tiled prefill, f16 products) for their correctness column
 *   --no-f16  f32 products in the tiled prefill even with shader-f16 (WebGpuOptions.f16 = false)
 * Without a GPU: VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json npm run bench:webgpu
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildSyntheticModel, describe, type SyntheticSpec } from "./synthetic.js";
import { loadConfig } from "../src/config.js";
import { openCheckpoint } from "../src/io/checkpoint.js";
import { XverseModel } from "../src/model/xverse.js";
import { defaultModelDir } from "../src/model/embedded.js";
import { resolveBackend } from "../src/model/load.js";
import type { Backend } from "../src/backend/backend.js";
import { createNodeWebGpuBackend } from "../src/backend/webgpu/node.js";
import { XverseError } from "../src/errors.js";
import { benchFailed, helpFromHeader } from "./cli.js";

helpFromHeader(import.meta.url);

const SPEC_100M: SyntheticSpec = { hidden: 768, layers: 12, heads: 12, kvHeads: 12, intermediate: 2048, vocab: 16000, context: 2048, seed: 3 };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function measure(dir: string, backend: Backend, P: number, D: number, repeats: number) {
  const model = XverseModel.fromSource(loadConfig(dir), openCheckpoint(dir), { backend });
  const V = model.config.vocabSize;
  const prompt = Array.from({ length: P }, (_, i) => 3 + ((i * 7919) % (V - 3)));
  const pre: number[] = [], dec: number[] = [];
  const out = new Float32Array(V);
  let first = new Float32Array(0);
  // warm-up: a prefill past 8 tokens and a decode step compile both kinds of pipeline; weights upload on first use
  const warm = model.newCache(P + 1);
  await model.forwardAsync(prompt, warm, { out });
  await model.forwardAsync([3], warm, { out });
  for (let r = 0; r < repeats; r++) {
    const cache = model.newCache(P + D);
    const a = performance.now();
    await model.forwardAsync(prompt, cache, { out });
    const b = performance.now();
    if (r === 0) first = out.slice();
    for (let i = 0; i < D; i++) await model.forwardAsync([3 + (i % 100)], cache, { out });
    const c = performance.now();
    pre.push((P * 1000) / (b - a));
    dec.push((D * 1000) / (c - b));
  }
  return { prefill: median(pre), decode: median(dec), logits: first };
}

async function main() {
  const { values } = parseArgs({ options: { large: { type: "boolean" }, repeats: { type: "string" }, style: { type: "string" }, "no-f16": { type: "boolean" } } });
  const repeats = Number(values.repeats ?? 3);
  if (values.style !== undefined && values.style !== "workgroup" && values.style !== "thread") throw new XverseError("bad_argument", `--style must be workgroup or thread, got ${values.style}`);
  const gpu = await createNodeWebGpuBackend({ style: values.style as "workgroup" | "thread" | undefined, f16: !values["no-f16"] });
  const a = gpu.adapter;
  console.log(`adapter: ${a.name}${a.cpu ? " (CPU driver)" : ""} · kernel style ${gpu.ctx.style} · subgroups ${gpu.ctx.hasSubgroups} · shader-f16 ${gpu.ctx.hasF16}${gpu.ctx.hasF16 ? ` (f16 products ${gpu.ctx.f16Math ? "on" : "off"})` : ""}`);
  console.log(`limits: maxStorageBufferBindingSize ${a.maxStorageBufferBindingSize} · maxBufferSize ${a.maxBufferSize}`);
  console.log(`features: ${a.features.join(", ")}`);
  const cpu = resolveBackend("auto", undefined, () => {});
  const cases: [string, string, string, number, number][] = [["stories260K", defaultModelDir(), "f32", 128, 32]];
  if (values.large) {
    const dir = buildSyntheticModel(join(tmpdir(), "xverse-bench-100m-f16"), SPEC_100M, "f16", (s) => console.log(s));
    console.log(`synthetic: ${describe(SPEC_100M)}`);
    cases.push(["synthetic-110M", dir, "f16", 128, 16]);
  }
  const rows = ["| model | weights | backend | prefill tok/s (P) | decode tok/s (D) | max |Δ| logits vs CPU |", "|---|---|---|---|---|---|"];
  for (const [name, dir, dtype, P, D] of cases) {
    const c = await measure(dir, cpu, P, D, repeats);
    const g = await measure(dir, gpu, P, D, repeats);
    let d = 0;
    for (let i = 0; i < c.logits.length; i++) d = Math.max(d, Math.abs(c.logits[i] - g.logits[i]));
    rows.push(`| ${name} | ${dtype} | ${cpu.name} | ${c.prefill.toFixed(1)} (${P}) | ${c.decode.toFixed(1)} (${D}) | — |`);
    rows.push(`| ${name} | ${dtype} | webgpu | ${g.prefill.toFixed(1)} (${P}) | ${g.decode.toFixed(1)} (${D}) | ${d.toExponential(2)} |`);
  }
  console.log(rows.join("\n"));
  gpu.destroy();
}

// a missing adapter or package is a message (XverseError says what to do), anything else a stack for us
main().then(() => process.exit(0), benchFailed);
