// Kernel throughput of the native addon (not a test): matvec GB/s of weight streamed, prefill GFLOP/s.
// Usage: npx tsc -p . && node native/bench.mjs [--isa avx512_vnni] [--ts]
import { loadNativeBackend } from "../dist/src/backend/native/index.js";
import { tsBackend } from "../dist/src/backend/ts/index.js";
import { randWeight, rng, randArray } from "../dist/test/native/random.js";

const args = process.argv.slice(2);
const isaArg = args.includes("--isa") ? args[args.indexOf("--isa") + 1] : null;
const withTs = args.includes("--ts");
const nb = loadNativeBackend();
if (!nb) throw new Error("addon not built");
if (isaArg) nb.setIsa(isaArg);

const BYTES = { f32: 4, bf16: 2, f16: 2, q8_row: 1, q4_row: 0.5, q4_group: 0.5 };

/** Best-of timing: the machine is shared, so the minimum is the least disturbed run. */
// With --cpu, time is this process's CPU time (user + sys), which a busy shared machine does not inflate by
// descheduling us; it is only meaningful with 1 thread.
const useCpu = args.includes("--cpu");
const now = () => (useCpu ? (() => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; })() : performance.now());
function best(fn, minMs = 300) {
  fn();
  let bestT = Infinity;
  const start = performance.now();
  let n = 0;
  while (performance.now() - start < minMs || n < 3) {
    const t0 = now();
    for (let i = 0; i < 4; i++) fn();
    const dt = (now() - t0) / 4;
    if (dt > 0) bestT = Math.min(bestT, dt);
    n++;
  }
  return bestT / 1000;
}
const threadList = useCpu ? [1] : [1, 2];

console.log(`isa ${nb.isa}`);
for (const [rows, cols] of [[4096, 4096], [5504, 2048]]) {
  for (const fmt of ["f32", "bf16", "f16", "q8_row", "q4_row", "q4_group"]) {
    // Several copies, used in turn, so the weights come from DRAM (the L3 is 32 MB) as they do in a model.
    const one = randWeight(fmt, rows, cols, rng(1), 32);
    const wbytes = rows * cols * BYTES[fmt] + (one.scales ? one.scales.byteLength : 0);
    const copies = Math.max(2, Math.ceil(128e6 / wbytes));
    const ws = Array.from({ length: copies }, () =>
      nb.prepareWeight({ ...one, data: one.data.slice(), scales: one.scales?.slice() }));
    let wi = 0;
    const next = () => ws[wi++ % copies];
    const w = ws[0];
    const line = [`${fmt.padEnd(8)} ${rows}x${cols}`];
    for (const th of threadList) {
      nb.setThreads(th);
      const x1 = randArray(cols, rng(2));
      const y1 = new Float32Array(rows);
      const t1 = best(() => nb.matmul(y1, x1, next(), 1));
      line.push(`matvec ${th}t ${(wbytes / t1 / 1e9).toFixed(1)} GB/s (${(t1 * 1e3).toFixed(2)} ms)`);
    }
    for (const th of threadList) {
      nb.setThreads(th);
      const T = 64;
      const x = randArray(T * cols, rng(3));
      const y = new Float32Array(T * rows);
      const t = best(() => nb.matmul(y, x, next(), T), 600);
      line.push(`T=64 ${th}t ${((2 * T * rows * cols) / t / 1e9).toFixed(1)} GFLOP/s`);
    }
    if (withTs) {
      const x1 = randArray(cols, rng(2));
      const y1 = new Float32Array(rows);
      const t = best(() => tsBackend.matmul(y1, x1, w, 1), 500);
      line.push(`ts matvec ${(wbytes / t / 1e9).toFixed(2)} GB/s`);
    }
    console.log(line.join(" | "));
  }
}
