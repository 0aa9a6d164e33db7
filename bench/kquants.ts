/**
 * Native GGUF block matmul speed per type: decode (T = 1) as GB/s of weight bytes streamed per token, and
 * prefill as GOP/s, on 4096×4096 and 11008×4096 matrices (LLaMA-7B's attention and MLP shapes).
 * Usage: npm run build && node dist/bench/kquants.js [--threads 1] [--T 1] [--isa avx512_vnni] [--types q4_k,q6_k]
 * Block contents are random (speed does not depend on them). Q8_0 is the streaming reference: its kernel does
 * little work per byte, so its GB/s is close to what one thread can read here.
 *
 * --cpu: process CPU time (user + sys) around each call instead of wall time, best of --reps calls, for every
 * T in --Ts (default 1,16,128,512) on one --rows × --cols matrix. On a machine shared with other jobs wall time
 * mostly measures the other jobs; one thread's CPU time still measures the kernel (cache sharing aside).
 * --addons a.node,b.node (with --cpu): the same calls on each build in turn, interleaved, so kernel variants
 * compare under the same load; the last column is each build's speed relative to the first.
 */
import { parseArgs } from "node:util";
import { type Addon, loadAddon } from "../src/backend/native/addon.js";
import { machineInfo } from "./machine.js";

const TYPES: Record<string, { code: number; values: number; bytes: number }> = {
  q4_0: { code: 6, values: 32, bytes: 18 }, q4_1: { code: 7, values: 32, bytes: 20 },
  q5_0: { code: 8, values: 32, bytes: 22 }, q5_1: { code: 9, values: 32, bytes: 24 },
  q8_0: { code: 10, values: 32, bytes: 34 },
  q2_k: { code: 11, values: 256, bytes: 84 }, q3_k: { code: 12, values: 256, bytes: 110 },
  q4_k: { code: 13, values: 256, bytes: 144 }, q5_k: { code: 14, values: 256, bytes: 176 },
  q6_k: { code: 15, values: 256, bytes: 210 },
};

const { values: flags } = parseArgs({ options: {
  threads: { type: "string", default: "1" }, T: { type: "string", default: "1" }, isa: { type: "string" },
  types: { type: "string", default: "q8_0,q4_0,q2_k,q3_k,q4_k,q5_k,q6_k" },
  cpu: { type: "boolean", default: false }, Ts: { type: "string", default: "1,16,128,512" },
  rows: { type: "string", default: "4096" }, cols: { type: "string", default: "4096" },
  reps: { type: "string", default: "5" }, addons: { type: "string" },
} });

function open(path?: string): Addon {
  const load = loadAddon(path);
  if (!load.addon) throw new Error(`native addon not available: ${"reason" in load ? load.reason : ""}`);
  const a = load.addon;
  if (flags.isa) a.setIsa(flags.isa);
  a.setThreads(Number(flags.threads));
  return a;
}

// Random-looking blocks whose f16 fields (scales, mins) are finite and moderate, so no f32 special value or
// denormal takes a slow path: every byte gets pseudo-random bits, then each block's f16 words that hold a scale
// are overwritten with small values. Which words those are does not matter for speed elsewhere.
function blocks(name: string, n: number): Uint8Array {
  const t = TYPES[name]!;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 2654435761) >>> 24;
  const f16At: Record<string, number[]> = { q2_k: [80, 82], q3_k: [108], q6_k: [208], q4_k: [0, 2], q5_k: [0, 2] };
  const at = f16At[name] ?? (name === "q4_1" || name === "q5_1" ? [0, 2] : [0]);
  for (let b = 0; b < n; b += t.bytes) for (const o of at) { data[b + o] = 0x00; data[b + o + 1] = 0x20 + ((b >> 4) & 3); }
  return data;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

if (flags.cpu) {
  const paths = flags.addons ? flags.addons.split(",") : [undefined];
  const addons = paths.map(open);
  const rows = Number(flags.rows), cols = Number(flags.cols), reps = Number(flags.reps);
  console.log(`# ${JSON.stringify(machineInfo())}`);
  console.log(`# isa ${addons[0]!.info().isa}, threads ${addons[0]!.info().threads}, ${rows}x${cols}, CPU time, best of ${reps}`);
  if (paths.length > 1) console.log(`# builds: ${paths.map((p, i) => `[${i}] ${p}`).join(" ")}`);
  for (const name of flags.types!.split(",")) {
    const t = TYPES[name];
    if (!t) throw new Error(`unknown type ${name} (one of ${Object.keys(TYPES).join(", ")})`);
    const n = rows * (cols / t.values) * t.bytes;
    const data = blocks(name, n);
    for (const T of flags.Ts!.split(",").map(Number)) {
      const x = Float32Array.from({ length: cols * T }, (_, i) => Math.sin(i));
      const y = new Float32Array(rows * T);
      // small T: several calls per sample so the CPU-time clock's resolution does not matter
      const inner = Math.max(1, Math.round(2e7 / (rows * cols * T)));
      const best = addons.map(() => Infinity);
      for (const a of addons) a.matmul(y, x, t.code, data, null, rows, cols, 0, T);
      for (let r = 0; r < reps; r++) {
        addons.forEach((a, i) => {
          const c0 = cpuMs();
          for (let k = 0; k < inner; k++) a.matmul(y, x, t.code, data, null, rows, cols, 0, T);
          best[i] = Math.min(best[i]!, (cpuMs() - c0) / inner);
        });
      }
      const cells = best.map((ms, i) => {
        const s = ms / 1000;
        const rate = T === 1 ? `${(n / s / 1e9).toFixed(2)} GB/s` : `${((2 * rows * cols * T) / s / 1e9).toFixed(1)} GOP/s`;
        return `${rate}${i > 0 ? ` (${(best[0]! / ms).toFixed(2)}x)` : ""}`;
      });
      console.log(`${name.padEnd(5)} T=${String(T).padEnd(4)} ${cells.join("  |  ")}`);
    }
  }
} else {
  const a = open();
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
}
