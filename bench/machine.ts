/**
 * What the benchmark ran on: CPU model, cores, and a measured memory read bandwidth (the decode roofline's
 * denominator), plus the peers/ resolver for node-llama-cpp.
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { cpus, totalmem } from "node:os";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** Installs peers/ on first use (scripts/ensure-peers.mjs) and imports a package from it. */
export async function importPeer<T = any>(name: string): Promise<T> {
  execFileSync(process.execPath, [join(repoRoot, "scripts", "ensure-peers.mjs")], { stdio: ["ignore", "inherit", "inherit"] });
  const resolved = createRequire(join(repoRoot, "peers", "package.json")).resolve(name);
  return (await import(resolved)) as T;
}

export interface MachineInfo {
  cpu: string;
  logical: number;
  /** Physical cores from /proc/cpuinfo where readable, else the logical count. */
  physical: number;
  memGiB: number;
  flags: string[];
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  let physical = list.length;
  let flags: string[] = [];
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const cores = new Set<string>();
    for (const block of info.split("\n\n")) {
      const phys = /physical id\s*:\s*(\d+)/.exec(block)?.[1] ?? "0";
      const core = /core id\s*:\s*(\d+)/.exec(block)?.[1];
      if (core !== undefined) cores.add(`${phys}:${core}`);
    }
    if (cores.size > 0) physical = cores.size;
    const f = /flags\s*:\s*(.*)/.exec(info)?.[1]?.split(" ") ?? [];
    flags = ["avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni"].filter((x) => f.includes(x));
  } catch { /* not Linux */ }
  return { cpu: list[0]?.model ?? "unknown", logical: list.length, physical, memGiB: totalmem() / 2 ** 30, flags };
}

// Each worker sums its slice of a shared buffer `reps` times; 8 independent accumulators keep the loop bound
// by loads rather than by the add latency.
const WORKER = `
const { workerData, parentPort } = require("node:worker_threads");
const { sab, start, end, reps, flag } = workerData;
const a = new Float64Array(sab, start * 8, end - start);
const f = new Int32Array(flag);
Atomics.wait(f, 0, 0);
let s = 0;
for (let r = 0; r < reps; r++) {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  for (let i = 0; i + 7 < a.length; i += 8) {
    s0 += a[i]; s1 += a[i + 1]; s2 += a[i + 2]; s3 += a[i + 3];
    s4 += a[i + 4]; s5 += a[i + 5]; s6 += a[i + 6]; s7 += a[i + 7];
  }
  s += s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
}
parentPort.postMessage(s);
`;

/**
 * Read bandwidth in bytes/s with `threads` workers over a buffer of `bytes` (well past the caches).
 * A JavaScript loop, so it is a lower bound on what vectorized native code can stream.
 */
export async function measureBandwidth(threads: number, bytes = 1 << 30, reps = 4): Promise<number> {
  const n = bytes / 8;
  const sab = new SharedArrayBuffer(bytes);
  const a = new Float64Array(sab);
  for (let i = 0; i < n; i += 512) a[i] = 1; // touch every page
  const flag = new SharedArrayBuffer(4);
  const per = Math.floor(n / threads);
  const workers = Array.from({ length: threads }, (_, t) => new Worker(WORKER, {
    eval: true, workerData: { sab, start: t * per, end: t === threads - 1 ? n : (t + 1) * per, reps, flag },
  }));
  const done = workers.map((w) => new Promise<void>((res, rej) => { w.once("message", () => res()); w.once("error", rej); }));
  await new Promise((r) => setTimeout(r, 200)); // let every worker reach Atomics.wait
  const t0 = performance.now();
  Atomics.store(new Int32Array(flag), 0, 1);
  Atomics.notify(new Int32Array(flag), 0);
  await Promise.all(done);
  const secs = (performance.now() - t0) / 1000;
  await Promise.all(workers.map((w) => w.terminate()));
  return (bytes * reps) / secs;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
