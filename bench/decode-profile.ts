/**
 * Where decode time goes: T = 1 forwards of a synthetic GGUF model with every backend call timed, summed by
 * kernel × weight shape, next to the bytes each matmul streams (GB/s per kernel) and the time outside the kernels
 * (JS, N-API argument checks, the forward's own loop). A development tool for the decode path, in the style of
 * prefill-profile.ts (not a comparison: `npm run bench` is).
 *   node dist/bench/decode-profile.js [--size full|medium] [--type q8_0] [--prompt 64] [--tokens 64] [--threads 2] [--runs 3]
 *                                     [--plain]   (no per-call timing: the forward's own ms / token, for reference)
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Backend, Weight } from "../src/backend/backend.js";
import { argmax } from "../src/generate/processors.js";
import type { ExportType } from "../src/gguf/export.js";
import { loadModel } from "../src/model/load.js";
import { weightBytes } from "../src/quant/quantize.js";
import { loadAverage, measureBandwidth } from "./machine.js";
import { buildSyntheticModel, ensureSyntheticGguf, specBySize, syntheticDir, syntheticTokens } from "./synthetic.js";

const { values: a } = parseArgs({ options: {
  size: { type: "string", default: "medium" }, type: { type: "string", default: "q8_0" }, prompt: { type: "string", default: "64" },
  tokens: { type: "string", default: "64" }, threads: { type: "string", default: "2" }, runs: { type: "string", default: "3" },
  plain: { type: "boolean", default: false },
} });
const spec = specBySize(a.size!);
const dir = syntheticDir(spec);
if (!existsSync(join(dir, "f16", "config.json"))) buildSyntheticModel(join(dir, "f16"), spec, "f16", console.log);
const path = ensureSyntheticGguf(dir, a.type as ExportType, console.log);
const threads = Number(a.threads);
const { model } = await loadModel(path, { backend: "native", threads, kvType: "f16" });
console.log(`${a.size} ${a.type}, ${threads} threads, isa ${(model.backend as { isa?: string }).isa ?? "?"}, load ${loadAverage()}`);

// Wraps every kernel call to add its wall time (and, for matmuls, the weight bytes it read) to its key.
const times = new Map<string, { ms: number; calls: number; bytes: number }>();
const be = model.backend as Backend & Record<string, unknown>;
if (!a.plain) {
  for (const k of ["matmul", "rmsnorm", "rope", "kvWrite", "attention", "siluMul", "addInPlace", "embedRow"] as const) {
    const f = (be[k] as (...args: unknown[]) => void).bind(be);
    be[k] = (...args: unknown[]) => {
      const t0 = performance.now();
      f(...args);
      const dt = performance.now() - t0;
      const w = k === "matmul" ? (args[2] as Weight) : null;
      const key = w ? `matmul ${w.format} ${w.rows}x${w.cols}` : k;
      const e = times.get(key) ?? { ms: 0, calls: 0, bytes: 0 };
      e.ms += dt, e.calls++, e.bytes += w ? weightBytes(w) : 0;
      times.set(key, e);
    };
  }
}

const P = Number(a.prompt), N = Number(a.tokens);
const prompt = syntheticTokens(P, spec.vocab);
const seq = model.newCache(P + N + 8);
const out = new Float32Array(spec.vocab);
let best = Infinity;
let bestTimes = new Map(times);
for (let r = 0; r < Number(a.runs); r++) {
  seq.truncate(0);
  let logits = model.forward(prompt, seq);
  times.clear();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) logits = model.forward([argmax(logits)], seq, { out });
  const ms = (performance.now() - t0) / N;
  console.log(`run ${r + 1}: ${ms.toFixed(3)} ms / token (${(1000 / ms).toFixed(1)} tok/s)`);
  if (ms < best) best = ms, bestTimes = new Map([...times].map(([k, v]) => [k, { ...v }]));
}
const bw = await measureBandwidth(threads);
let kernels = 0, bytes = 0;
for (const v of bestTimes.values()) kernels += v.ms / N, bytes += v.bytes / N;
console.log(`best ${best.toFixed(3)} ms / token; memory bandwidth ${(bw / 1e9).toFixed(1)} GB/s → roofline ${((1000 * bytes) / bw).toFixed(3)} ms / token for ${(bytes / 1e6).toFixed(1)} MB of weights`);
if (!a.plain) {
  console.log(`${"kernel".padEnd(30)} ${"ms/token".padStart(9)} ${"%".padStart(6)} ${"calls".padStart(6)} ${"µs/call".padStart(8)} ${"GB/s".padStart(6)}`);
  for (const [k, v] of [...bestTimes].sort((x, y) => y[1].ms - x[1].ms)) {
    const gbs = v.bytes ? ((v.bytes / (v.ms / 1000)) / 1e9).toFixed(1) : "";
    console.log(`${k.padEnd(30)} ${(v.ms / N).toFixed(3).padStart(9)} ${((100 * v.ms) / N / best).toFixed(1).padStart(6)} ${(v.calls / N).toFixed(0).padStart(6)} ${((1000 * v.ms) / v.calls).toFixed(1).padStart(8)} ${gbs.padStart(6)}`);
  }
  console.log(`${"outside kernels".padEnd(30)} ${(best - kernels).toFixed(3).padStart(9)} ${((100 * (best - kernels)) / best).toFixed(1).padStart(6)}`);
}
console.log(`load at end ${loadAverage()}`);
