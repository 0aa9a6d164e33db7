/**
 * Loading a big bf16 torch .bin checkpoint with --quantize, at real scale: writes an XVERSE-13B-shaped
 * (or 7B / 1B) random-weight checkpoint as torch.save .bin shards + pytorch_model.bin.index.json (streamed, one
 * tensor in memory at a time), then loads it in a fresh child process per precision and reports wall time, peak RSS
 * (maxRSS of that child: the load is the only thing it did), the loaded weights' bytes, and prefill / decode speed.
 *
 *   node dist/bench/load-13b.js [--shape 13b|7b|1b] [--precisions q4,q4g32,q8] [--threads 2] [--dir D] [--keep]
 *   node dist/bench/load-13b.js --selftest          # the writer against our reader and the fixture's layout
 *
 * The checkpoint is deleted at the end unless --keep (a kept, complete one is reused by the next run).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openCheckpoint } from "../src/io/checkpoint.js";
import { loadModel } from "../src/model/load.js";
import { weightBytes } from "../src/quant/quantize.js";
import { f32ToBf16, toFloat32 } from "../src/tensor.js";
import { machineInfo, repoRoot } from "./machine.js";
import { configJson, describe, paramCount, randomEncoded, syntheticTokens, tensorPlan, type SyntheticSpec } from "./synthetic.js";
import { statePickle, TorchSaveWriter, type TorchTensorPlan } from "./torch-save-writer.js";

const SHAPES: Record<string, SyntheticSpec & { shards: number }> = {
  "13b": { hidden: 5120, layers: 40, heads: 40, kvHeads: 40, intermediate: 13824, vocab: 100534, context: 8192, seed: 13, shards: 10 },
  "7b": { hidden: 4096, layers: 32, heads: 32, kvHeads: 32, intermediate: 11008, vocab: 100534, context: 8192, seed: 7, shards: 8 },
  "1b": { hidden: 2048, layers: 16, heads: 16, kvHeads: 16, intermediate: 5504, vocab: 100534, context: 4096, seed: 1, shards: 3 },
  tiny: { hidden: 64, layers: 3, heads: 4, kvHeads: 4, intermediate: 160, vocab: 1000, context: 256, seed: 5, shards: 2 },
};

const PRECISIONS: Record<string, { bits: 4 | 8; group: number }> = {
  q4: { bits: 4, group: 0 }, q4g32: { bits: 4, group: 32 }, q4g64: { bits: 4, group: 64 }, q4g128: { bits: 4, group: 128 }, q8: { bits: 8, group: 0 },
};

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const log = (m: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const gb = (b: number) => (b / 1e9).toFixed(2);

/** The tensor's bf16 bits: norms are 1, the rest synthetic.ts's deterministic random weights. */
function tensorBits(name: string, n: number, sigma: number, seed: number): Uint16Array {
  return sigma === 0 ? new Uint16Array(n).fill(f32ToBf16(1)) : randomEncoded(name, n, sigma, seed, "bf16");
}

/** Splits the plan into `shards` consecutive runs of about equal bytes, like save_pretrained's max_shard_size. */
function shardPlan<T extends { shape: number[] }>(plan: T[], shards: number): T[][] {
  const bytes = (t: T) => 2 * t.shape.reduce((a, b) => a * b, 1);
  const total = plan.reduce((a, t) => a + bytes(t), 0);
  const out: T[][] = [[]];
  let acc = 0;
  for (const t of plan) {
    if (out[out.length - 1].length && acc + bytes(t) > (total / shards) * out.length && out.length < shards) out.push([]);
    out[out.length - 1].push(t);
    acc += bytes(t);
  }
  return out;
}

/** Writes config, tokenizer and the .bin shards into `dir`; returns the checkpoint's bytes. */
function writeCheckpoint(dir: string, s: SyntheticSpec & { shards: number }): number {
  const marker = join(dir, ".complete");
  if (existsSync(marker)) { log(`reusing complete checkpoint ${dir}`); return Number(readFileSync(marker, "utf8")); }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const fixture = join(repoRoot, "test", "fixtures", "golden", "tiny-xverse");
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) copyFileSync(join(fixture, f), join(dir, f));
  writeFileSync(join(dir, "config.json"), JSON.stringify(configJson(s, "bf16"), null, 2) + "\n");
  writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ bos_token_id: 2, eos_token_id: 3, pad_token_id: 1 }) + "\n");
  const shards = shardPlan(tensorPlan(s), s.shards);
  const weightMap: Record<string, string> = {};
  let total = 0;
  const t0 = Date.now();
  shards.forEach((list, k) => {
    const base = `pytorch_model-${String(k + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}`;
    const plan: TorchTensorPlan[] = list.map((t) => ({ name: t.name, dtype: "bf16", shape: t.shape }));
    const w = new TorchSaveWriter(join(dir, `${base}.bin`), base, plan);
    try {
      for (const t of list) {
        const n = t.shape.reduce((a, b) => a * b, 1);
        w.writeTensor(tensorBits(t.name, n, t.sigma, s.seed)); // generated, written, dropped
        weightMap[t.name] = `${base}.bin`;
        total += 2 * n;
      }
      w.finish();
    } catch (e) { w.abort(); throw e; }
    const el = (Date.now() - t0) / 1000;
    log(`shard ${k + 1}/${shards.length}: ${list.length} tensors; ${gb(total)} GB written in ${el.toFixed(0)} s (${(total / 1e6 / el).toFixed(0)} MB/s)`);
  });
  writeFileSync(join(dir, "pytorch_model.bin.index.json"), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 1) + "\n");
  writeFileSync(marker, String(total));
  return total;
}

interface ChildResult {
  precision: string;
  loadS: number;
  peakRssLoadMiB: number;
  rssAfterLoadMiB: number;
  weightBytes: number;
  prefillTokens: number;
  prefillTokS: number;
  decodeTokens: number;
  decodeTokS: number;
  peakRssEndMiB: number;
  /** CPU seconds of the load (user, system) and bytes read from storage during it (fsRead blocks × 512). */
  loadUserS: number;
  loadSysS: number;
  loadReadGB: number;
  firstTokens: number[];
}

/** In the child: load, then prefill 64 and decode 16 greedy tokens. Prints one JSON line. */
async function child(dir: string, precision: string, threads: number): Promise<void> {
  const p = PRECISIONS[precision];
  if (!p) throw new Error(`unknown precision ${precision}`);
  const t0 = performance.now();
  const { model } = await loadModel(dir, { quantize: p.bits, groupSize: p.group, backend: "native", threads, onWarning: (m) => log(`warning: ${m}`) });
  const loadS = (performance.now() - t0) / 1000;
  const ru = process.resourceUsage();
  const peakRssLoadMiB = ru.maxRSS / 1024; // KiB → MiB: the peak, load included
  const rssAfterLoadMiB = process.memoryUsage().rss / 2 ** 20;
  const W = model.weights;
  let bytes = weightBytes(W.embed) + weightBytes(W.lmHead) + W.norm.byteLength;
  for (const L of W.layers) {
    bytes += L.inputNorm.byteLength + L.postNorm.byteLength;
    for (const w of [L.q, L.k, L.v, L.o, L.gate, L.up, L.down]) bytes += weightBytes(w);
  }
  const V = model.config.vocabSize;
  const prompt = syntheticTokens(64, V);
  const decodeN = 16;
  const cache = model.newCache(prompt.length + decodeN + 1);
  const argmax = (l: Float32Array) => { let b = 0; for (let i = 1; i < l.length; i++) if (l[i] > l[b]) b = i; return b; };
  let t = performance.now();
  let logits = model.forward(prompt, cache);
  const prefillS = (performance.now() - t) / 1000;
  const out: number[] = [argmax(logits)];
  t = performance.now();
  for (let i = 0; i < decodeN; i++) {
    logits = model.forward([out[out.length - 1]], cache, { out: logits });
    out.push(argmax(logits));
  }
  const decodeS = (performance.now() - t) / 1000;
  const r: ChildResult = {
    precision, loadS, peakRssLoadMiB, rssAfterLoadMiB, weightBytes: bytes,
    prefillTokens: prompt.length, prefillTokS: prompt.length / prefillS, decodeTokens: decodeN, decodeTokS: decodeN / decodeS,
    peakRssEndMiB: process.resourceUsage().maxRSS / 1024,
    loadUserS: ru.userCPUTime / 1e6, loadSysS: ru.systemCPUTime / 1e6, loadReadGB: (ru.fsRead * 512) / 1e9, firstTokens: out.slice(0, 6),
  };
  process.stdout.write(`RESULT ${JSON.stringify(r)}\n`);
}

/** The writer's output must read back bit-exactly through our reader, and its pickle must look like torch's. */
function selftest(): void {
  const dir = `/tmp/xverse-load13b-selftest-${process.pid}`;
  const s = SHAPES.tiny;
  try {
    writeCheckpoint(dir, s);
    const src = openCheckpoint(dir);
    const plan = tensorPlan(s);
    if (src.names().length !== plan.length) throw new Error(`selftest: ${src.names().length} tensors read, ${plan.length} written`);
    for (const t of plan) {
      const got = src.read(t.name);
      const n = t.shape.reduce((a, b) => a * b, 1);
      const want = tensorBits(t.name, n, t.sigma, s.seed);
      if (got.dtype !== "bf16" || got.shape.join() !== t.shape.join()) throw new Error(`selftest: ${t.name} read as ${got.dtype} [${got.shape}]`);
      const g = got.data as Uint16Array;
      for (let i = 0; i < n; i++) if (g[i] !== want[i]) throw new Error(`selftest: ${t.name}[${i}] ${g[i]} != ${want[i]}`);
      void toFloat32;
    }
    src.close();
    // Python's zipfile (CRC-checked) and pickletools, where present, as an independent reader of the same files.
    try {
      const py = execFileSync("python3", ["-c", [
        "import zipfile,sys,pickletools,io",
        "z=zipfile.ZipFile(sys.argv[1]); bad=z.testzip(); assert bad is None, bad",
        "print([i.filename for i in z.infolist()][:3], len(z.infolist()), 'entries, CRCs ok')",
        "d=z.read([n for n in z.namelist() if n.endswith('data.pkl')][0]); o=io.StringIO(); pickletools.dis(d[:400], out=o) if False else None",
        "ops=[op.name for op,a,p in pickletools.genops(d)]; print('pickle ops:', ' '.join(ops[:40]))",
      ].join("\n"), join(dir, "pytorch_model-00001-of-00002.bin")], { encoding: "utf8" });
      log(`python zipfile: ${py.trim()}`);
    } catch (e) { log(`python check skipped or failed: ${(e as Error).message.split("\n")[0]}`); }
    const pk = statePickle([{ name: "w", dtype: "bf16", shape: [48, 48] }]);
    log(`selftest ok: ${plan.length} tensors bit-exact through openCheckpoint; pickle for one tensor is ${pk.length} bytes`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (flag("child")) return child(arg("dir")!, arg("precision")!, Number(arg("threads") ?? 2));
  if (flag("selftest")) return selftest();
  const shape = arg("shape") ?? "13b";
  const s = SHAPES[shape];
  if (!s) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(", ")}`);
  const precisions = (arg("precisions") ?? "q4,q4g32").split(",");
  const threads = Number(arg("threads") ?? 2);
  const dir = arg("dir") ?? `/tmp/xverse-load-${shape}-bin`;
  const m = machineInfo();
  log(`machine: ${m.cpu}, ${m.physical} physical / ${m.logical} logical cores, ${m.memGiB.toFixed(0)} GiB RAM`);
  log(`shape ${shape}: ${describe(s)}; bf16 checkpoint ${gb(2 * paramCount(s).total)} GB in ${s.shards} .bin shards → ${dir}`);
  const st = statfsSync("/tmp");
  log(`/tmp free: ${gb(st.bavail * st.bsize)} GB`);
  const t0 = Date.now();
  const total = writeCheckpoint(dir, s);
  log(`checkpoint ready: ${gb(total)} GB (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  if (flag("gen-only")) return;
  const results: ChildResult[] = [];
  try {
    for (const p of precisions) {
      log(`loading with ${p} in a fresh child process (threads ${threads}) …`);
      const r = spawnSync(process.execPath, [process.argv[1], "--child", "--dir", dir, "--precision", p, "--threads", String(threads)],
        { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
      const line = r.stdout.split("\n").find((l) => l.startsWith("RESULT "));
      if (r.status !== 0 || !line) { log(`child for ${p} failed (status ${r.status}, signal ${r.signal}): ${r.stdout.slice(-2000)}`); continue; }
      const res = JSON.parse(line.slice(7)) as ChildResult;
      results.push(res);
      log(`${p}: load ${res.loadS.toFixed(1)} s, peak RSS ${(res.peakRssLoadMiB / 1024).toFixed(2)} GiB (after load ${(res.rssAfterLoadMiB / 1024).toFixed(2)} GiB), ` +
        `weights ${gb(res.weightBytes)} GB, load CPU ${res.loadUserS.toFixed(0)} s user + ${res.loadSysS.toFixed(0)} s sys, ${res.loadReadGB.toFixed(1)} GB read from disk; prefill ${res.prefillTokS.toFixed(2)} tok/s, decode ${res.decodeTokS.toFixed(2)} tok/s`);
    }
  } finally {
    if (!flag("keep")) { rmSync(dir, { recursive: true, force: true }); log(`deleted ${dir}`); }
  }
  console.log(`\n### ${shape} (${describe(s)}), bf16 .bin shards ${gb(total)} GB, ${threads} threads, ${m.cpu}\n`);
  console.log("| precision | load s | peak RSS GiB | weights GB | prefill 64 tok/s | decode 16 tok/s |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of results) {
    console.log(`| ${r.precision} | ${r.loadS.toFixed(1)} | ${(r.peakRssLoadMiB / 1024).toFixed(2)} | ${gb(r.weightBytes)} | ${r.prefillTokS.toFixed(2)} | ${r.decodeTokS.toFixed(2)} |`);
  }
  console.log(`\nJSON ${JSON.stringify({ shape, total, threads, results })}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
