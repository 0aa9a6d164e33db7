/**
 * Native GGUF block matmul speed per type: decode (T = 1) as GB/s of weight bytes streamed per token, and
 * prefill as GOP/s, on 4096×4096 and 11008×4096 matrices (LLaMA-7B's attention and MLP shapes).
 * Usage: npm run build && node dist/bench/kquants.js [--threads 1] [--T 1] [--isa avx512_vnni] [--types q4_k,q6_k]
 * Block contents are random (speed does not depend on them). Q8_0 is the streaming reference: its kernel does
 * little work per byte, so its GB/s is close to what one thread can read here.
 */
import { parseArgs } from "node:util";
import { loadAddon } from "../src/backend/native/addon.js";
import { machineInfo } from "./machine.js";

const TYPES: Record<string, { code: number; values: number; bytes: number }> = {
  q4_0: { code: 6, values: 32, bytes: 18 }, q8_0: { code: 10, values: 32, bytes: 34 },
  q2_k: { code: 11, values: 256, bytes: 84 }, q3_k: { code: 12, values: 256, bytes: 110 },
  q4_k: { code: 13, values: 256, bytes: 144 }, q5_k: { code: 14, values: 256, bytes: 176 },
  q6_k: { code: 15, values: 256, bytes: 210 },
};

const { values: flags } = parseArgs({ options: {
  threads: { type: "string", default: "1" }, T: { type: "string", default: "1" }, isa: { type: "string" },
  types: { type: "string", default: "q8_0,q4_0,q2_k,q3_k,q4_k,q5_k,q6_k" },
} });
const load = loadAddon();
if (!load.addon) throw new Error(`native addon not available: ${"reason" in load ? load.reason : ""}`);
const a = load.addon;
if (flags.isa) a.setIsa(flags.isa);
a.setThreads(Number(flags.threads));
const T = Number(flags.T);
console.log(`# ${JSON.stringify(machineInfo())}`);
console.log(`# isa ${a.info().isa}, threads ${a.info().threads}, T = ${T}`);
for (const [rows, cols] of [[4096, 4096], [11008, 4096]]) {
  for (const name of flags.types!.split(",")) {
    const t = TYPES[name];
    if (!t) throw new Error(`unknown type ${name} (one of ${Object.keys(TYPES).join(", ")})`);
    const n = rows * (cols / t.values) * t.bytes;
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = (i * 2654435761) >>> 24;
    const x = Float32Array.from({ length: cols * T }, (_, i) => Math.sin(i));
    const y = new Float32Array(rows * T);
    for (let i = 0; i < 3; i++) a.matmul(y, x, t.code, data, null, rows, cols, 0, T);
    const iters = Math.max(3, Math.round(2e9 / n / T));
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) a.matmul(y, x, t.code, data, null, rows, cols, 0, T);
    const s = (performance.now() - t0) / 1000 / iters;
    console.log(`${name.padEnd(5)} ${rows}x${cols}: ${(s * 1e3).toFixed(3)} ms, ${(n / s / 1e9).toFixed(1)} GB/s, ${((2 * rows * cols * T) / s / 1e9).toFixed(1)} GOP/s`);
  }
}
