/**
 * Where prefill time goes: one T-token forward of a synthetic GGUF model with every backend call timed, summed by
 * kernel × weight format. A development tool for the prefill kernels (not a comparison: `npm run bench` is).
 *   node dist/bench/prefill-profile.js [--type q8_0] [--tokens 512] [--layers 2] [--threads 2] [--runs 3]
 */
import { parseArgs } from "node:util";
import type { Backend, Weight } from "../src/backend/backend.js";
import { loadModel } from "../src/model/load.js";
import { BENCH_SPEC, buildSyntheticModel, ensureSyntheticGguf, syntheticDir, syntheticTokens } from "./synthetic.js";
import type { ExportType } from "../src/gguf/export.js";
import { existsSync } from "node:fs";
import { contextThreads, openLlamaCpp } from "./machine.js";
import { join } from "node:path";

const { values: a } = parseArgs({ options: {
  type: { type: "string", default: "q8_0" }, tokens: { type: "string", default: "512" },
  layers: { type: "string", default: "2" }, threads: { type: "string", default: "2" }, runs: { type: "string", default: "3" },
  llama: { type: "boolean", default: false },
} });
const spec = { ...BENCH_SPEC, layers: Number(a.layers) };
const dir = syntheticDir(spec);
if (!existsSync(join(dir, "f16", "config.json"))) buildSyntheticModel(join(dir, "f16"), spec, "f16", console.log);
const path = ensureSyntheticGguf(dir, a.type as ExportType, console.log);
const { model } = await loadModel(path, { backend: "native", threads: Number(a.threads), kvType: "f16" });

/** Wraps every kernel call to add its wall time to times[kernel · format]. */
const times = new Map<string, number>();
const be = model.backend as Backend & Record<string, unknown>;
for (const k of ["matmul", "rmsnorm", "rope", "kvWrite", "attention", "siluMul", "addInPlace", "embedRow"] as const) {
  const f = (be[k] as (...args: unknown[]) => void).bind(be);
  be[k] = (...args: unknown[]) => {
    const t0 = performance.now();
    f(...args);
    const key = k === "matmul" ? `matmul ${(args[2] as Weight).format} ${(args[2] as Weight).rows}x${(args[2] as Weight).cols}` : k;
    times.set(key, (times.get(key) ?? 0) + performance.now() - t0);
  };
}
const T = Number(a.tokens), ids = syntheticTokens(T, spec.vocab);
let best = Infinity;
for (let r = 0; r < Number(a.runs); r++) {
  times.clear();
  const seq = model.newCache(T);
  const t0 = performance.now();
  model.forward(ids, seq);
  const ms = performance.now() - t0;
  best = Math.min(best, ms);
  console.log(`run ${r + 1}: ${ms.toFixed(1)} ms (${((T * 1000) / ms).toFixed(1)} tok/s, ${spec.layers} layers)`);
}
const total = [...times.values()].reduce((s, v) => s + v, 0);
for (const [k, v] of [...times].sort((x, y) => y[1] - x[1])) console.log(`${k.padEnd(34)} ${v.toFixed(1).padStart(8)} ms ${((100 * v) / total).toFixed(1).padStart(5)} %`);
console.log(`isa: ${(be as { isa?: string }).isa ?? "?"}, best ${best.toFixed(1)} ms`);

// --llama: llama.cpp's prefill of the same tokens on the same file, same threads, for scale
if (a.llama) {
  const { llama } = await openLlamaCpp(Number(a.threads));
  const lm = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
  const ctx = await lm.createContext({ contextSize: T + 16, batchSize: T, threads: contextThreads(Number(a.threads)), sequences: 1 });
  const seq = ctx.getSequence();
  let lbest = Infinity;
  for (let r = 0; r < Number(a.runs); r++) {
    await seq.clearHistory();
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(ids);
    lbest = Math.min(lbest, performance.now() - t0);
  }
  console.log(`llama.cpp best ${lbest.toFixed(1)} ms (${((T * 1000) / lbest).toFixed(1)} tok/s); ratio ours/llama.cpp speed ${(lbest / best).toFixed(2)}`);
  await ctx.dispose(); await lm.dispose(); await llama.dispose();
}
