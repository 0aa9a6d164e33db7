/**
 * The seed README's precision table, for models we can run here: memory (peak RSS and weight bytes) and quality
 * per precision — f32, bf16, int8 per row, int4 per row, int4 group-wise — for stories260K and a synthetic
 * XVERSE-shaped model. Quality: perplexity on held-out text (stories260K only; a random model has no language)
 * and the mean KL divergence KL(p_f32 ‖ p_q) of next-token distributions, plus top-1 agreement with f32.
 *
 * Each precision runs in its own child process so its peak RSS is its own. Like XVERSE's quantize(), the int
 * variants quantize the bf16 checkpoint (embeddings, norms and lm_head stay bf16).
 *
 *   node dist/bench/quality-table.js [--size 1b|small|none] [--groups 32,128 (synthetic)] [--tokens 128] [--dir DIR]
 */
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Weight } from "../src/backend/backend.js";
import { selectBackend } from "../src/backend/select.js";
import { loadConfig } from "../src/config.js";
import { openCheckpoint } from "../src/io/checkpoint.js";
import { writeSafetensors } from "../src/io/safetensors.js";
import { XverseModel } from "../src/model/xverse.js";
import { quantizeWeight, weightBytes } from "../src/quant/quantize.js";
import { f32ToBf16, toFloat32 } from "../src/tensor.js";
import { loadTokenizer } from "../src/tokenizer/load.js";
import { machineInfo, repoRoot } from "./machine.js";
import { heldOutStories } from "./quality-text.js";
import { BENCH_SPEC, MEDIUM_SPEC, buildSyntheticModel, describe, specKey, syntheticTokens, } from "./synthetic.js";

interface Precision { key: string; label: string; dir: "f32" | "bf16"; bits: 0 | 4 | 8; group: number }
interface ChildJob { dir: string; bits: 0 | 4 | 8; group: number; seqs: number[][]; out: string }
interface ChildResult { rssMiB: number; weightMiB: number; nll: number; count: number; seconds: number; backend: string; perRow: string[] }


// ------------------------------------------------------------------ child: one model at one precision

function logSoftmaxRow(src: Float32Array, off: number, V: number, dst: Float32Array, dOff: number): void {
  let mx = -Infinity;
  for (let j = 0; j < V; j++) if (src[off + j] > mx) mx = src[off + j];
  let s = 0;
  for (let j = 0; j < V; j++) s += Math.exp(src[off + j] - mx);
  const lse = mx + Math.log(s);
  for (let j = 0; j < V; j++) dst[dOff + j] = src[off + j] - lse;
}

function child(job: ChildJob): ChildResult {
  const backend = selectBackend("auto", { warn: () => {} });
  const cfg = loadConfig(job.dir);
  const src = openCheckpoint(job.dir);
  const perRow: string[] = [];
  const t0 = performance.now();
  const model = XverseModel.fromSource(cfg, src, {
    backend,
    projection: job.bits === 0 ? undefined : (name, source): Weight => {
      const t = source.read(name);
      // A group size that does not divide this tensor's row (stories260K's 172-wide down_proj) falls back to
      // one scale per row for that tensor, and the table says so.
      const g = job.group && t.shape[1] % job.group === 0 ? job.group : 0;
      if (job.group && !g) perRow.push(name.replace(/^model\.layers\.\d+\./, "*."));
      return quantizeWeight(t, job.bits as 4 | 8, g);
    },
  });
  src.close();
  const W = model.weights;
  let bytes = weightBytes(W.embed) + weightBytes(W.lmHead) + W.norm.byteLength;
  for (const L of W.layers) {
    bytes += L.inputNorm.byteLength + L.postNorm.byteLength;
    for (const w of [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]) bytes += weightBytes(w);
  }
  const V = cfg.vocabSize;
  let nll = 0, count = 0;
  const rows: Float32Array[] = [];
  for (const seq of job.seqs) {
    const logits = model.forward(seq, model.newCache(seq.length), { logits: "all" });
    const lp = new Float32Array((seq.length - 1) * V);
    for (let t = 0; t < seq.length - 1; t++) {
      logSoftmaxRow(logits, t * V, V, lp, t * V);
      nll -= lp[t * V + seq[t + 1]];
      count++;
    }
    rows.push(lp);
  }
  writeFileSync(job.out, Buffer.concat(rows.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength))));
  const isa = (backend as { isa?: string }).isa;
  return {
    rssMiB: process.resourceUsage().maxRSS / 1024, weightMiB: bytes / 2 ** 20, nll, count,
    seconds: (performance.now() - t0) / 1000, backend: `${backend.name}${isa ? ` (${isa})` : ""}`, perRow: [...new Set(perRow)],
  };
}

// ------------------------------------------------------------------ parent

/** A bf16 copy of a float checkpoint directory (every tensor rounded), with its tokenizer files. */
function bf16Copy(srcDir: string, dst: string): string {
  if (existsSync(join(dst, ".complete"))) return dst;
  rmSync(dst, { recursive: true, force: true });
  mkdirSync(dst, { recursive: true });
  const src = openCheckpoint(srcDir);
  writeSafetensors(join(dst, "model.safetensors"), src.names().map((name) => ({
    name, dtype: "bf16" as const, shape: src.info(name).shape,
    load: () => {
      const x = toFloat32(src.read(name));
      const h = new Uint16Array(x.length);
      for (let i = 0; i < x.length; i++) h[i] = f32ToBf16(x[i]);
      return { dtype: "bf16" as const, shape: src.info(name).shape, data: h };
    },
  })));
  src.close();
  for (const f of readdirSync(srcDir)) if (/\.json$|^LICENSE/.test(f)) copyFileSync(join(srcDir, f), join(dst, f));
  const cfg = JSON.parse(readFileSync(join(dst, "config.json"), "utf8"));
  writeFileSync(join(dst, "config.json"), JSON.stringify({ ...cfg, torch_dtype: "bfloat16" }, null, 2));
  writeFileSync(join(dst, ".complete"), "");
  return dst;
}

function runChild(job: ChildJob): ChildResult {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--child", JSON.stringify(job)], {
    encoding: "utf8", maxBuffer: 1 << 26, stdio: ["ignore", "pipe", "inherit"],
  });
  return JSON.parse(out.trim().split("\n").pop()!);
}

function compare(ref: Float32Array, q: Float32Array, V: number): { kl: number; top1: number } {
  const n = ref.length / V;
  let kl = 0, agree = 0;
  for (let t = 0; t < n; t++) {
    let s = 0, ar = 0, aq = 0;
    for (let j = 0; j < V; j++) {
      const i = t * V + j;
      const lp = ref[i];
      s += Math.exp(lp) * (lp - q[i]);
      if (ref[i] > ref[t * V + ar]) ar = j;
      if (q[i] > q[t * V + aq]) aq = j;
    }
    kl += s;
    if (ar === aq) agree++;
  }
  return { kl: kl / n, top1: agree / n };
}

function evaluate(title: string, dirs: { f32: string; bf16: string }, precisions: Precision[], seqs: number[][], work: string, withPpl: boolean): void {
  const V = loadConfig(dirs.f32).vocabSize;
  const rows: string[] = [];
  let ref: Float32Array | null = null;
  let backend = "";
  const notes = new Set<string>();
  for (const p of precisions) {
    const out = join(work, `${p.key}.logprobs`);
    process.stderr.write(`  ${title}: ${p.label} …\n`);
    const r = runChild({ dir: dirs[p.dir], bits: p.bits, group: p.group, seqs, out });
    backend = r.backend;
    const buf = readFileSync(out);
    const lp = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    rmSync(out);
    if (!ref) ref = lp;
    const cmp = p.key === "f32" ? { kl: 0, top1: 1 } : compare(ref, lp, V);
    if (r.perRow.length) notes.add(`${p.label}: ${r.perRow.join(", ")} kept one scale per row (the group size does not divide its row length)`);
    const ppl = withPpl ? Math.exp(r.nll / r.count).toFixed(3) : "–";
    rows.push(`| ${title} | ${p.label} | ${r.rssMiB.toFixed(0)} | ${r.weightMiB.toFixed(2)} | ${ppl} | ${cmp.kl.toExponential(2)} | ${(100 * cmp.top1).toFixed(1)} % |`);
  }
  console.log(`\n### ${title}\n`);
  console.log(`| Model | Precision | Peak RSS (MiB) | Weights (MiB) | Perplexity | Mean KL vs f32 (nats) | Top-1 = f32 |`);
  console.log(`|---|---|---|---|---|---|---|`);
  for (const r of rows) console.log(r);
  console.log(`\nbackend: ${backend}; ${seqs.length} sequence(s), ${seqs.reduce((a, s) => a + s.length - 1, 0)} predicted positions`);
  for (const n of notes) console.log(`note: ${n}`);
}

function precisionsFor(groups: number[]): Precision[] {
  return [
    { key: "f32", label: "f32", dir: "f32", bits: 0, group: 0 },
    { key: "bf16", label: "bf16", dir: "bf16", bits: 0, group: 0 },
    { key: "int8", label: "int8 per row", dir: "bf16", bits: 8, group: 0 },
    { key: "int4", label: "int4 per row", dir: "bf16", bits: 4, group: 0 },
    ...groups.map((g): Precision => ({ key: `int4g${g}`, label: `int4 group ${g}`, dir: "bf16", bits: 4, group: g })),
  ];
}

function main(): void {
  const { values } = parseArgs({
    options: { child: { type: "string" }, size: { type: "string" }, groups: { type: "string" }, tokens: { type: "string" }, dir: { type: "string" } },
  });
  if (values.child) {
    process.stdout.write(JSON.stringify(child(JSON.parse(values.child) as ChildJob)) + "\n");
    return;
  }
  const groups = (values.groups ?? "32,128").split(",").map(Number);
  const work = values.dir ?? join(tmpdir(), "xverse-quality");
  mkdirSync(work, { recursive: true });
  const m = machineInfo();
  console.log(`# Precision table (xverse.ts)\n`);
  console.log(`machine: ${m.cpu}, ${m.physical} cores, ${m.memGiB.toFixed(0)} GiB. Int variants quantize the bf16 checkpoint (embeddings, norms, lm_head stay bf16).`);
  console.log(`Peak RSS is the whole Node process (runtime, checkpoint reads, activations, logits); Weights is the model's weight bytes.`);

  // stories260K: the embedded model and TinyStories-like held-out stories generated from templates
  const stories = join(repoRoot, "models", "stories260K");
  const tok = loadTokenizer(stories);
  const seqs = heldOutStories().map((s) => tok.encode(s).ids);
  const sDirs = { f32: stories, bf16: bf16Copy(stories, join(work, "stories260K-bf16")) };
  console.log(`\nstories260K text: ${seqs.length} held-out TinyStories-style stories made from templates by bench/quality-text.ts (seed 2024), BOS + ~200 tokens each.`);
  // stories260K rows are 64 or 172 wide: group 128 would be per-row everywhere, so it gets 16 and 32.
  evaluate("stories260K", sDirs, precisionsFor([16, 32]), seqs, work, true);

  const size = values.size ?? "1b";
  if (size !== "none") {
    const spec = size === "small" ? MEDIUM_SPEC : BENCH_SPEC;
    const base = join(work, `synthetic-${specKey(spec)}`);
    const log = (s: string) => process.stderr.write(s + "\n");
    const dirs = { f32: buildSyntheticModel(join(base, "f32"), spec, "f32", log), bf16: buildSyntheticModel(join(base, "bf16"), spec, "bf16", log) };
    const n = Number(values.tokens ?? 128);
    console.log(`\nsynthetic model: ${describe(spec)}; weights 99.5 % N(0, σ²) + 0.5 % outliers at 6σ, GPT-2-style σ (bench/synthetic.ts); ` +
      `${n} random token ids (no perplexity: a random model has no language).`);
    evaluate(`synthetic ${size === "small" ? "0.2B" : "1.2B"}`, dirs, precisionsFor(groups), [syntheticTokens(n, spec.vocab, 11)], work, false);
  }
}

main();
