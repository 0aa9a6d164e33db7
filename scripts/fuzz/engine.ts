/**
 * A small coverage-guided fuzzer, run in the instrumented copy that `npm run fuzz` builds (see cli.ts): every
 * branch of the code under test bumps a counter (jazzer.js's Babel coverage plugin), and an input that reaches a
 * new (edge, hit-count bucket) pair joins the corpus, as in libFuzzer / AFL. Mutations: bit flips, interesting
 * bytes and integers, inserts / deletes / duplicated runs, splices of two corpus entries, and words the code
 * compared its input against (jazzer.js's compare hooks feed a dictionary). jazzer.js's own libFuzzer binding is
 * not used because its prebuilt addon needs glibc 2.38 / GLIBCXX_3.4.32, newer than this machine's.
 *
 * A watchdog thread kills the process (after saving the input) when one execution runs past the time bound or
 * the process's RSS passes the memory cap; anything but XverseError / a 4xx escaping a target is a finding.
 * (It lives in scripts/, not test/: node --test runs every .js under a test/ directory.)
 * Usage (from cli.ts): node engine.js TARGET --seconds N [--runs N] --corpus DIR --out DIR --edges N
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: "string", default: "10" }, runs: { type: "string" }, corpus: { type: "string" }, out: { type: "string" },
    edges: { type: "string", default: "65536" }, "max-len": { type: "string", default: "4096" }, "timeout-ms": { type: "string", default: "2000" },
    "rss-mb": { type: "string", default: "2048" }, seed: { type: "string" }, save: { type: "boolean", default: false },
  },
});
const target = positionals[0];
const seconds = Number(a.seconds), maxRuns = a.runs ? Number(a.runs) : Infinity;
const N = Number(a.edges) + 1;

// --- coverage and comparison feedback: the globals the instrumented code calls
const counters = new Uint8Array(N);
const virgin = new Uint8Array(N);
const dict: Uint8Array[] = [];
const dictSeen = new Set<string>();
const enc = new TextEncoder();
function addWord(v: unknown): void {
  if (dict.length >= 4096) return;
  let key: string, bytes: Uint8Array;
  if (typeof v === "string") {
    if (v.length === 0 || v.length > 64) return;
    key = "s" + v; bytes = enc.encode(v);
  } else if (typeof v === "number" && Number.isInteger(v) && v !== 0 && Math.abs(v) < 2 ** 32) {
    key = "n" + v;
    bytes = new Uint8Array(Math.abs(v) < 256 ? 1 : Math.abs(v) < 65536 ? 2 : 4);
    for (let i = 0, x = v >>> 0; i < bytes.length; i++, x >>>= 8) bytes[i] = x & 255;
  } else return;
  if (dictSeen.has(key)) return;
  dictSeen.add(key);
  dict.push(bytes);
}
const cmp = (x: any, y: any, op: string): boolean => // eslint-disable-line @typescript-eslint/no-explicit-any
  op === "==" ? x == y : op === "===" ? x === y : op === "!=" ? x != y : op === "!==" ? x !== y // eslint-disable-line eqeqeq
    : op === "<" ? x < y : op === "<=" ? x <= y : op === ">" ? x > y : x >= y;
(globalThis as Record<string, unknown>).Fuzzer = {
  coverageTracker: { incrementCounter(id: number) { const c = counters[id]; if (c !== 255) counters[id] = c + 1; } },
  tracer: {
    traceStrCmp(s1: unknown, s2: unknown, op: string) { const r = cmp(s1, s2, op); if (!r || op[0] === "!") { addWord(s1); addWord(s2); } return r; },
    traceNumberCmp(n1: unknown, n2: unknown, op: string) { const r = cmp(n1, n2, op); addWord(n1); addWord(n2); return r; },
    // a `case` test: the value stays the case's own (the discriminant is compared against it by the switch)
    traceAndReturn(_current: unknown, t: unknown) { addWord(t); return t; },
  },
};

// imported only now: instrumented module bodies call Fuzzer.* as they load
const targets = (await import("../../test/fuzz/targets.js")) as typeof import("../../test/fuzz/targets.js");
const maxLen = targets.MAX_LEN[target] ?? Number(a["max-len"]);

/** AFL's hit-count buckets: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+. */
const BUCKET = new Uint8Array(256);
for (let i = 1; i < 256; i++) BUCKET[i] = i === 1 ? 1 : i === 2 ? 2 : i === 3 ? 4 : i < 8 ? 8 : i < 16 ? 16 : i < 32 ? 32 : i < 128 ? 64 : 128;
let edgesSeen = 0;
function newCoverage(): boolean {
  let fresh = false;
  for (let i = 0; i < N; i++) {
    const c = counters[i];
    if (c === 0) continue;
    counters[i] = 0;
    const b = BUCKET[c];
    if ((virgin[i] & b) === 0) {
      if (virgin[i] === 0) edgesSeen++;
      virgin[i] |= b;
      fresh = true;
    }
  }
  return fresh;
}

// --- the watchdog: a hang or a runaway allocation is a finding even though the main thread cannot be interrupted
const sab = new SharedArrayBuffer(16 + maxLen);
const ctrl = new Int32Array(sab, 0, 4); // [exec count, busy, input length]
const shared = new Uint8Array(sab, 16);
const outDir = a.out!;
mkdirSync(join(outDir, target), { recursive: true });
const watchdog = new Worker(`
  const { workerData: w } = require("node:worker_threads");
  const { writeFileSync, writeSync } = require("node:fs");
  const { createHash } = require("node:crypto");
  const ctrl = new Int32Array(w.sab, 0, 4), input = new Uint8Array(w.sab, 16);
  let last = -1, since = Date.now();
  setInterval(() => {
    const n = Atomics.load(ctrl, 0), busy = Atomics.load(ctrl, 1);
    if (n !== last || !busy) { last = n; since = Date.now(); }
    const slow = Date.now() - since > w.timeoutMs, fat = process.memoryUsage.rss() > w.rssBytes;
    if (!slow && !fat) return;
    const data = input.slice(0, Atomics.load(ctrl, 2));
    const file = w.dir + "/" + (slow ? "timeout-" : "oom-") + createHash("sha1").update(data).digest("hex");
    writeFileSync(file, data);
    // straight to fd 2: a worker's process.stderr goes through the main thread, which is the one stuck
    writeSync(2, "FINDING " + (slow ? "timeout: one input ran over " + w.timeoutMs + " ms" : "memory: RSS over " + (w.rssBytes >> 20) + " MiB") + ": " + file + "\\n");
    process.kill(process.pid, "SIGKILL");
  }, 100);
`, { eval: true, workerData: { sab, timeoutMs: Number(a["timeout-ms"]), rssBytes: Number(a["rss-mb"]) * 2 ** 20, dir: join(outDir, target) } });
watchdog.unref();

// --- mutations
let rngState = (Number(a.seed ?? Date.now()) >>> 0) || 1;
const rand = (n: number): number => {
  rngState ^= rngState << 13; rngState ^= rngState >>> 17; rngState ^= rngState << 5; rngState >>>= 0;
  return rngState % n;
};
const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x0a];
const INT_VALUES = [0, 1, -1, 0x7fffffff, -0x80000000, 0xffffffff, 2 ** 31, 2 ** 53, 16, 32, 64, 255, 256, 65535, 65536, 1e9];

function mutate(src: Uint8Array, corpus: Uint8Array[]): Uint8Array {
  let b = Array.from(src);
  const stack = 1 << rand(4);
  for (let k = 0; k < stack; k++) {
    const len = b.length;
    switch (rand(11)) {
      case 0: if (len) b[rand(len)] ^= 1 << rand(8); break;
      case 1: if (len) b[rand(len)] = INTERESTING[rand(INTERESTING.length)]; break;
      case 2: if (len) b[rand(len)] = rand(256); break;
      case 3: b.splice(rand(len + 1), 0, ...Array.from({ length: 1 + rand(8) }, () => rand(256))); break;
      case 4: if (len) b.splice(rand(len), 1 + rand(Math.min(len, 16))); break;
      case 5: if (len) { const at = rand(len), n = 1 + rand(Math.min(32, len - at)); b.splice(rand(len + 1), 0, ...b.slice(at, at + n)); } break;
      case 6: if (len >= 4) { // an integer field, little-endian (sizes, counts, offsets)
        const w = [1, 2, 4, 8][rand(4)], at = rand(Math.max(1, len - w + 1));
        let v = BigInt.asUintN(64, BigInt(Math.trunc(INT_VALUES[rand(INT_VALUES.length)] + (rand(3) - 1))));
        for (let i = 0; i < w && at + i < len; i++, v >>= 8n) b[at + i] = Number(v & 255n);
      } break;
      case 7: case 8: if (dict.length) { const word = dict[rand(dict.length)]; const at = rand(len + 1);
        if (rand(2)) b.splice(at, 0, ...word); else for (let i = 0; i < word.length && at + i < len; i++) b[at + i] = word[i]; } break;
      case 9: if (corpus.length > 1) { const o = corpus[rand(corpus.length)]; const cut = rand(len + 1), from = rand(o.length + 1);
        b = b.slice(0, cut).concat(Array.from(o.subarray(from))); } break;
      case 10: if (len) b.length = rand(len); break;
    }
  }
  if (b.length > maxLen) b.length = maxLen;
  return Uint8Array.from(b);
}

// --- the loop
const run = (data: Uint8Array): void => {
  shared.set(data.subarray(0, maxLen));
  Atomics.store(ctrl, 2, Math.min(data.length, maxLen));
  Atomics.store(ctrl, 1, 1);
  try {
    targets.runTarget(target, data);
  } finally {
    Atomics.store(ctrl, 1, 0);
    Atomics.add(ctrl, 0, 1);
  }
};

function finding(data: Uint8Array, e: unknown): never {
  const file = join(outDir, target, "crash-" + createHash("sha1").update(data).digest("hex"));
  writeFileSync(file, data);
  process.stderr.write(`FINDING crash: ${file}\n${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
}

const corpus: Uint8Array[] = [];
const seedDir = a.corpus ? join(a.corpus, target) : null;
if (seedDir && existsSync(seedDir)) for (const f of readdirSync(seedDir).sort()) corpus.push(new Uint8Array(readFileSync(join(seedDir, f))));
if (!corpus.length) corpus.push(new Uint8Array(0));
for (const c of corpus) { try { run(c); } catch (e) { finding(c, e); } newCoverage(); }
const seeds = corpus.length;
const t0 = Date.now();
let execs = 0, lastReport = t0;
const saved = a.save && seedDir ? seedDir : null;
while (execs < maxRuns && Date.now() - t0 < seconds * 1000) {
  // newer entries are likelier parents: they are where the frontier is
  const parent = corpus[rand(4) === 0 ? rand(corpus.length) : corpus.length - 1 - rand(Math.min(corpus.length, 16))];
  const x = mutate(parent, corpus);
  try { run(x); } catch (e) { finding(x, e); }
  execs++;
  if (newCoverage()) {
    corpus.push(x);
    if (saved) writeFileSync(join(saved, createHash("sha1").update(x).digest("hex").slice(0, 16)), x);
  }
  if ((execs & 1023) === 0 && Date.now() - lastReport > 10_000) {
    lastReport = Date.now();
    process.stderr.write(`${target}: ${execs} execs, ${Math.round(execs / ((lastReport - t0) / 1000))}/s, ${edgesSeen} edges, corpus ${corpus.length}\n`);
  }
}
const secs = (Date.now() - t0) / 1000;
process.stdout.write(JSON.stringify({ target, execs, seconds: Math.round(secs), execsPerSecond: Math.round(execs / secs), edges: edgesSeen, corpus: corpus.length, seeds, dictionary: dict.length, findings: 0 }) + "\n");
process.exit(0);
