/**
 * `npm run bench`: our engine vs llama.cpp (node-llama-cpp 3.21.1) on the same synthetic XVERSE-architecture
 * weights, same thread count:
 *  - f16, int8, int4: ours loads the safetensors and quantizes them its own way (int8 per row ~ Q8_0, int4 group 32
 *    ~ Q4_0), llama.cpp loads the matching GGUF;
 *  - q8_0, q4_0, q4_k_m, q5_k_m, q6_k: both engines load the SAME GGUF file (ours runs its blocks as stored).
 * Prefill tok/s (one forward over the prompt) and decode tok/s (greedy, one token per forward), median of N runs,
 * with the decode memory-bandwidth roofline (bytes: the weights and the KV cache read per step; memchr probes: best
 * of three at the start, and one just before each run, which sees the same neighbours as the run on a shared
 * machine); for GGUF precisions also load-to-first-token time (each engine in a fresh child process, warm page
 * cache, median of 3) and the child's RSS after load. The last lines are
 * `ratio_prefill_<p>` / `ratio_decode_<p>` (ours / llama.cpp: > 1 = ours faster) and `ratio_load_<p>` (llama.cpp's
 * load-to-first-token time / ours: > 1 = ours faster).
 *
 *   node dist/bench/inference.js [--quick | --size full|medium|quick] [--threads N] [--runs N] [--prompt N] [--gen N]
 *                                [--precisions f16,int8,int4,q8_0,q4_0,q4_k_m,q5_k_m,q6_k] [--dir DIR]
 *                                [--skip-llama] [--skip-ours] [--skip-load]
 */
import { existsSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadConfig } from "../src/config.js";
import { openCheckpoint } from "../src/io/checkpoint.js";
import { exportGguf, type ExportType } from "../src/gguf/export.js";
import { readGguf } from "../src/io/gguf.js";
import { selectBackend } from "../src/backend/select.js";
import { XverseModel } from "../src/model/xverse.js";
import { loadModel } from "../src/model/load.js";
import { argmax } from "../src/generate/processors.js";
import { projectionLoader } from "../src/quant/load.js";
import { weightBytes } from "../src/quant/quantize.js";
import { BENCH_SPEC, MEDIUM_SPEC, QUICK_SPEC, buildSyntheticModel, describe, specKey, syntheticTokens, syntheticVocab, type SyntheticSpec } from "./synthetic.js";
import { loadChildMain, measureLoad, type LoadResult } from "./load-child.js";
import { contextThreads, machineInfo, measureBandwidth, median, openLlamaCpp } from "./machine.js";
import { benchFailed, helpFromHeader } from "./cli.js";

helpFromHeader(import.meta.url);

type OwnPrecision = "f16" | "int8" | "int4";
type GgufPrecision = "q8_0" | "q4_0" | "q4_k_m" | "q5_k_m" | "q6_k";
type Precision = OwnPrecision | GgufPrecision;
const GGUF_PRECISIONS: readonly string[] = ["q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"];
const isGguf = (p: Precision): p is GgufPrecision => GGUF_PRECISIONS.includes(p);
const GGUF_TYPE: Record<Precision, ExportType> = {
  f16: "f16", int8: "q8_0", int4: "q4_0", q8_0: "q8_0", q4_0: "q4_0", q4_k_m: "q4_k_m", q5_k_m: "q5_k_m", q6_k: "q6_k",
};
const OURS: Record<OwnPrecision, { quantize: 0 | 4 | 8; groupSize: number; label: string }> = {
  f16: { quantize: 0, groupSize: 0, label: "f16 weights" },
  int8: { quantize: 8, groupSize: 0, label: "int8 per row (XVERSE), lm_head f16" },
  int4: { quantize: 4, groupSize: 32, label: "int4 group 32, lm_head f16" },
};
const weightsLabel = (p: Precision): string => (isGguf(p) ? `the same ${p.toUpperCase()} GGUF` : OURS[p].label);

/** Per run: tok/s, and the memory bandwidth probed just before that run (bytes/s). */
interface Timing { prefill: number[]; decode: number[]; bw: number[]; bytesPerToken: number; note?: string }

const log = (m: string) => process.stderr.write(m + "\n");


/** One engine at one precision, loaded once; `run` times one prefill + decode. */
interface Engine {
  name: string;
  bytesPerToken: number;
  run(): Promise<{ prefill: number; decode: number; generated: number }>;
  close(): Promise<void>;
}

/**
 * KV cache bytes one decode step reads, on average over a run: step i (0 … gen − 1) attends to prompt + i + 1
 * positions, each `perToken` bytes (K and V of every layer). At 512 + 128 tokens this is ~13 % of a q4_0 1.2 B
 * model's weights: a decode roofline of the weights alone would ask for more than memory can give.
 */
function kvCacheBytes(perToken: number, prompt: number, gen: number): number {
  return perToken * (prompt + (gen + 1) / 2);
}

async function openOurs(dir: string, p: Precision, prompt: number[], gen: number, threads: number): Promise<Engine> {
  const warnings: string[] = [];
  const t0 = performance.now();
  let model: XverseModel;
  if (isGguf(p)) {
    model = (await loadModel(ensureGguf(dir, p), { backend: "auto", threads, onWarning: (m) => warnings.push(m) })).model;
  } else {
    const backend = selectBackend("auto", { threads, warn: (m) => warnings.push(m) });
    const cfg = loadConfig(join(dir, "f16"));
    const src = openCheckpoint(join(dir, "f16"));
    model = XverseModel.fromSource(cfg, src, { backend, projection: projectionLoader(cfg, OURS[p]) });
    src.close();
  }
  for (const w of warnings) log(`  ours: ${w}`);
  const backend = model.backend;
  const cfg = model.config;
  const W = model.weights;
  // Bytes one decode step streams: the seven projections of every layer and lm_head (one embedding row is noise),
  // and the KV cache up to the average decode position (f16 in both engines; kvCacheBytes below)
  let bytes = weightBytes(W.lmHead) + kvCacheBytes(model.kvBytesPerToken, prompt.length, gen);
  for (const L of W.layers) for (const w of [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]) bytes += weightBytes(w);
  const isa = (backend as { isa?: string }).isa;
  const name = `${backend.name}${isa ? ` (${isa})` : ""}`;
  log(`  ours [${name}] loaded ${p} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const cache = model.newCache(prompt.length + gen + 1);
  // warm-up: a short prefill and a few decode steps (page faults, JIT, thread pool start)
  model.forward(prompt.slice(0, 16), cache);
  for (let i = 0; i < 4; i++) model.forward([prompt[16 + i]], cache);
  const buf = new Float32Array(cfg.vocabSize);
  return {
    name, bytesPerToken: bytes,
    async run() {
      cache.truncate(0);
      let t = performance.now();
      let logits = model.forward(prompt, cache);
      const prefill = prompt.length / ((performance.now() - t) / 1000);
      t = performance.now();
      for (let i = 0; i < gen; i++) logits = model.forward([argmax(logits)], cache, { out: buf });
      return { prefill, decode: gen / ((performance.now() - t) / 1000), generated: gen };
    },
    async close() { /* garbage-collected */ },
  };
}

async function openLlama(ggufPath: string, prompt: number[], gen: number, threads: number, kvF16PerToken: number): Promise<Engine> {
  const { llama } = await openLlamaCpp(threads);
  const model = await llama.loadModel({ modelPath: ggufPath, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: prompt.length + gen + 16, batchSize: prompt.length, threads: contextThreads(threads), sequences: 1,
  });
  const seq = ctx.getSequence();
  // Bytes one decode step streams: every tensor but the embedding table (only one of its rows is read), and the
  // KV cache (llama.cpp's default: f16 K and V, the same bytes as ours)
  let bytes = kvCacheBytes(kvF16PerToken, prompt.length, gen);
  for (const t of readGguf(ggufPath).tensors) if (t.name !== "token_embd.weight") bytes += t.nbytes;
  await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, 16));
  return {
    name: "llama.cpp", bytesPerToken: bytes,
    async run() {
      await seq.clearHistory();
      let t = performance.now();
      await seq.evaluateWithoutGeneratingNewTokens(prompt);
      const prefill = prompt.length / ((performance.now() - t) / 1000);
      let n = 0;
      t = performance.now();
      // greedy decoding through the generator: each yielded token is one single-token forward + sampling
      for await (const _tok of seq.evaluate([prompt[prompt.length - 1]], { temperature: 0 })) if (++n >= gen) break;
      return { prefill, decode: n / ((performance.now() - t) / 1000), generated: n };
    },
    async close() {
      await ctx.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}


function ensureGguf(dir: string, p: Precision): string {
  const path = join(dir, `model-${GGUF_TYPE[p]}.gguf`);
  if (existsSync(path)) return path;
  const cfg = loadConfig(join(dir, "f16"));
  const src = openCheckpoint(join(dir, "f16"));
  const t0 = performance.now();
  try {
    // exportGguf writes atomically, so an existing file is always complete
    exportGguf(src, cfg, syntheticVocab(cfg.vocabSize), path, { type: GGUF_TYPE[p], name: "synthetic-xverse" });
  } finally {
    src.close();
  }
  log(`exported ${path} (${(statSync(path).size / 2 ** 30).toFixed(2)} GiB) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return path;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean" }, size: { type: "string" }, threads: { type: "string" }, runs: { type: "string" }, prompt: { type: "string" },
      gen: { type: "string" }, precisions: { type: "string" }, dir: { type: "string" },
      "skip-llama": { type: "boolean" }, "skip-ours": { type: "boolean" }, "skip-load": { type: "boolean" },
      "load-child": { type: "string" },
    },
    allowPositionals: true,
  });
  if (values["load-child"]) return loadChildMain();
  const m = machineInfo();
  const size = values.size ?? (values.quick ? "quick" : "full");
  const spec: SyntheticSpec | undefined = ({ full: BENCH_SPEC, medium: MEDIUM_SPEC, quick: QUICK_SPEC } as Record<string, SyntheticSpec>)[size];
  if (!spec) throw new Error(`--size must be full, medium or quick, got ${size}`);
  const threads = Number(values.threads ?? m.physical);
  const runs = Number(values.runs ?? 3);
  const promptLen = Number(values.prompt ?? (size === "quick" ? 128 : 512));
  const gen = Number(values.gen ?? (size === "quick" ? 32 : 128));
  const precisions = (values.precisions ?? "f16,int8,int4,q8_0,q4_0,q4_k_m,q5_k_m,q6_k").split(",") as Precision[];
  for (const p of precisions) if (!(p in GGUF_TYPE)) throw new Error(`unknown precision ${p} (f16, int8, int4, ${GGUF_PRECISIONS.join(", ")})`);
  const dir = values.dir ?? join(tmpdir(), `xverse-bench-${specKey(spec)}`);

  console.log(`# xverse.ts inference benchmark`);
  console.log(`machine: ${m.cpu}, ${m.physical} physical / ${m.logical} logical cores, ${m.memGiB.toFixed(0)} GiB, ${m.flags.join(" ")}`);
  console.log(`threads: ${threads} for both engines; runs: ${runs} (median); prompt ${promptLen} tokens, decode ${gen} tokens`);
  console.log(`model: synthetic XVERSE architecture, random weights — ${describe(spec)}`);
  console.log(`files: ${dir}`);
  // Other processes compete for the same cores; say how busy the machine was so the numbers can be judged.
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);

  buildSyntheticModel(join(dir, "f16"), spec, "f16", log);
  // best of three probes: other processes can only make a probe slower
  let bw = 0;
  for (let i = 0; i < 3; i++) bw = Math.max(bw, await measureBandwidth(threads));
  console.log(`memory read bandwidth: ${(bw / 1e9).toFixed(1)} GB/s (${threads} thread(s) scanning 1 GiB with memchr)`);
  const prompt = syntheticTokens(promptLen, spec.vocab);
  // f16 K and V of every layer, per token (llama.cpp's default cache type, and ours)
  const kvF16PerToken = 2 * spec.layers * spec.kvHeads * (spec.hidden / spec.heads) * 2;

  const results: { p: Precision; ours?: Timing & { backend: string }; llama?: Timing; load?: { ours: LoadResult; llama: LoadResult; fileMiB: number } }[] = [];
  for (const p of precisions) {
    const r: (typeof results)[number] = { p };
    // Both engines stay loaded and their runs alternate, so load from other processes hits both alike.
    const llama = values["skip-llama"] ? null : await openLlama(ensureGguf(dir, p), prompt, gen, threads, kvF16PerToken);
    const ours = values["skip-ours"] ? null : await openOurs(dir, p, prompt, gen, threads);
    if (llama) r.llama = { prefill: [], decode: [], bw: [], bytesPerToken: llama.bytesPerToken };
    if (ours) r.ours = { prefill: [], decode: [], bw: [], bytesPerToken: ours.bytesPerToken, backend: ours.name };
    for (let i = 0; i < runs; i++) {
      for (const [e, t] of [[llama, r.llama], [ours, r.ours]] as const) {
        if (!e || !t) continue;
        // the probe next to the run sees the same neighbours on this shared machine as the run does
        t.bw.push(await measureBandwidth(threads));
        const x = await e.run();
        t.prefill.push(x.prefill);
        t.decode.push(x.decode);
        if (x.generated < gen) t.note = `${e.name} stopped after ${x.generated} tokens`;
        log(`  ${e.name} ${p} run ${i + 1}: prefill ${x.prefill.toFixed(2)} tok/s, decode ${x.decode.toFixed(2)} tok/s`);
      }
    }
    await llama?.close();
    await ours?.close();
    if (isGguf(p) && !values["skip-load"] && !values["skip-llama"] && !values["skip-ours"]) {
      const path = ensureGguf(dir, p);
      const script = fileURLToPath(import.meta.url);
      const lo = measureLoad(script, "ours", path, threads), ll = measureLoad(script, "llama", path, threads);
      r.load = { ours: lo, llama: ll, fileMiB: statSync(path).size / 2 ** 20 };
      log(`  ${p} load → first token: ours ${lo.firstMs.toFixed(0)} ms (RSS ${lo.rssMiB.toFixed(0)} MiB), llama.cpp ${ll.firstMs.toFixed(0)} ms (RSS ${ll.rssMiB.toFixed(0)} MiB)`);
    }
    results.push(r);
  }

  console.log("");
  console.log(`| precision | engine | weights | prefill tok/s | decode tok/s | MB read / token | decode GB/s achieved | decode roofline tok/s | % of roofline | % of the probe next to each run |`);
  console.log(`|---|---|---|---|---|---|---|---|---|---|`);
  for (const r of results) {
    for (const [eng, t, label] of [
      [`ours (${r.ours?.backend ?? "-"})`, r.ours, weightsLabel(r.p)],
      ["llama.cpp", r.llama, GGUF_TYPE[r.p].toUpperCase() + " (all 2-D tensors)"],
    ] as const) {
      if (!t) continue;
      const roof = bw / t.bytesPerToken;
      const dec = median(t.decode);
      const near = median(t.decode.map((d, i) => (100 * d * t.bytesPerToken) / t.bw[i]));
      console.log(`| ${r.p} | ${eng} | ${label} | ${median(t.prefill).toFixed(2)} | ${dec.toFixed(2)} | ${(t.bytesPerToken / 1e6).toFixed(0)} | ${((dec * t.bytesPerToken) / 1e9).toFixed(1)} | ${roof.toFixed(2)} | ${((100 * dec) / roof).toFixed(0)} % | ${near.toFixed(0)} % (${(median(t.bw) / 1e9).toFixed(1)} GB/s) |`);
      if (t.note) console.log(`note: ${t.note}`);
    }
  }
  if (results.some((r) => r.load)) {
    console.log("");
    console.log("Load to first token (fresh process, warm page cache, median of 3; 16-token prompt) and RSS after it:");
    console.log("");
    console.log("| precision | file MiB | ours load ms | ours → first token ms | ours RSS MiB | llama.cpp load ms | llama.cpp → first token ms | llama.cpp RSS MiB |");
    console.log("|---|---|---|---|---|---|---|---|");
    for (const r of results) {
      if (!r.load) continue;
      const { ours: o, llama: l } = r.load;
      console.log(`| ${r.p} | ${r.load.fileMiB.toFixed(0)} | ${o.loadMs.toFixed(0)} | ${o.firstMs.toFixed(0)} | ${o.rssMiB.toFixed(0)} | ${l.loadMs.toFixed(0)} | ${l.firstMs.toFixed(0)} | ${l.rssMiB.toFixed(0)} |`);
    }
  }
  console.log("");
  console.log("Notes: llama.cpp's Q8_0 / Q4_0 files quantize token_embd and output (lm_head) too, as convert_hf_to_gguf does;");
  console.log("ours keeps lm_head in f16 (XVERSE's scheme), so it streams more bytes per decoded token at int8 / int4.");
  console.log("MB read / token: the weights a decode step streams and the KV cache (f16) up to the run's average position.");
  console.log("% of roofline: against the best of three probes at the start. The last column divides each run's decode by");
  console.log("the probe taken just before it (median over runs; the median probe in brackets): on a shared machine the");
  console.log("neighbours that slow a run slow its probe too. Above 100 % means a probe measured low.");
  console.log(`load average at end: ${loadavg().map((x) => x.toFixed(1)).join(" ")}`);
  console.log("");
  for (const r of results) {
    if (!r.ours || !r.llama) continue;
    console.log(`ratio_prefill_${r.p}: ${(median(r.ours.prefill) / median(r.llama.prefill)).toFixed(2)}`);
    console.log(`ratio_decode_${r.p}: ${(median(r.ours.decode) / median(r.llama.decode)).toFixed(2)}`);
    if (r.load) console.log(`ratio_load_${r.p}: ${(r.load.llama.firstMs / r.load.ours.firstMs).toFixed(2)}`);
  }
}

main().catch(benchFailed);
