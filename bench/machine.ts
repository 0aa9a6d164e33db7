/**
 * What the benchmark ran on: CPU model, cores, and a measured memory read bandwidth (the decode roofline's
 * denominator), plus the peers/ resolver for node-llama-cpp.
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { cpus, loadavg, totalmem } from "node:os";
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

// Each worker scans its slice of a shared zero-filled buffer for a byte that is not there: Buffer.indexOf is
// memchr, vectorized C, so the scan runs at memory speed rather than at JavaScript loop speed.
const WORKER = `
const { workerData, parentPort } = require("node:worker_threads");
const { sab, start, end, reps, flag } = workerData;
const b = Buffer.from(sab, start, end - start);
const f = new Int32Array(flag);
Atomics.wait(f, 0, 0);
let found = 0;
for (let r = 0; r < reps; r++) found += b.indexOf(1);
parentPort.postMessage(found);
`;

let probe: SharedArrayBuffer | undefined;
/**
 * The zero-filled buffer the probes scan, every page touched; kept for the next probe (`npm run bench` probes before
 * each run: a fresh GiB each time was 48 GiB of allocation and page faults per full run).
 */
function probeBuffer(bytes: number): SharedArrayBuffer {
  if (probe?.byteLength === bytes) return probe;
  probe = new SharedArrayBuffer(bytes);
  const u8 = new Uint8Array(probe);
  for (let i = 0; i < bytes; i += 4096) u8[i] = 0; // touch every page
  return probe;
}

/** Read bandwidth in bytes/s with `threads` workers scanning a buffer of `bytes` (well past the caches). */
export async function measureBandwidth(threads: number, bytes = 1 << 30, reps = 8): Promise<number> {
  const sab = probeBuffer(bytes);
  const flag = new SharedArrayBuffer(4);
  const per = Math.floor(bytes / threads / 4096) * 4096;
  const workers = Array.from({ length: threads }, (_, t) => new Worker(WORKER, {
    eval: true, workerData: { sab, start: t * per, end: t === threads - 1 ? bytes : (t + 1) * per, reps, flag },
  }));
  const done = workers.map((w) => new Promise<void>((res, rej) => { w.once("message", () => res()); w.once("error", rej); }));
  await new Promise((r) => setTimeout(r, 300)); // let every worker reach Atomics.wait
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

/**
 * node-llama-cpp from peers/ on the CPU with exactly `threads` threads: its default (4) oversubscribes a 2-core
 * machine and runs 10× slower. Pass `contextThreads(threads)` as createContext's `threads` too.
 */
export async function openLlamaCpp(threads: number): Promise<{ nlc: any; llama: any }> {
  const nlc = await importPeer<any>("node-llama-cpp");
  const llama = await nlc.getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: nlc.LlamaLogLevel.error });
  return { nlc, llama };
}

/** createContext's `threads` option pinning node-llama-cpp to exactly `threads` threads. */
export function contextThreads(threads: number): { ideal: number; min: number } {
  return { ideal: threads, min: threads };
}

/** This process's peak resident set size so far, in MiB. */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** "1.2 3.4 5.6": the 1/5/15-minute load averages, to judge how busy a shared machine was. */
export function loadAverage(): string {
  return loadavg().map((x) => x.toFixed(1)).join(" ");
}
