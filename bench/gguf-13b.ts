/**
 * Loading a real-size GGUF: writes an XVERSE-13B-shaped (or 7B / 1B) file of one GGUF type — q4_k_m by default,
 * with llama.cpp's per-tensor mixture (exportTensorType) — from random but valid blocks (random quant bits, sane f16
 * scales; streamed, one tensor in memory at a time), then loads it in fresh child processes with both engines and
 * reports load time, load-to-first-token time (16-token prompt) and RSS after it, median of 3 after one warm-up
 * (warm page cache). Random weights make the speed real and the text meaningless.
 *
 *   node dist/bench/gguf-13b.js [--shape 13b|7b|1b] [--type q4_k_m|q5_k_m|q6_k|q8_0|q4_0] [--threads N] [--dir D]
 *                               [--keep] [--skip-llama]
 *
 * The file is deleted at the end unless --keep (a kept one is reused by the next run).
 */
import { existsSync, rmSync, statSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../src/config.js";
import { exportGguf, exportTensorType, type ExportType } from "../src/gguf/export.js";
import { hfToGguf } from "../src/gguf/names.js";
import { GGML_TYPES } from "../src/gguf/types.js";
import { BLOCK_GEOMETRY, isBlockFormat } from "../src/backend/ts/blocks.js";
import type { TensorSource } from "../src/io/source.js";
import { f32ToF16 } from "../src/tensor.js";
import { loadChildMain, measureLoad, type LoadResult } from "./load-child.js";
import { loadAverage, machineInfo } from "./machine.js";
import { configJson, describe, paramCount, syntheticVocab, tensorPlan, type SyntheticSpec } from "./synthetic.js";
import { benchFailed, helpFromHeader } from "./cli.js";

helpFromHeader(import.meta.url);

const SHAPES: Record<string, SyntheticSpec> = {
  "13b": { hidden: 5120, layers: 40, heads: 40, kvHeads: 40, intermediate: 13824, vocab: 100534, context: 8192, seed: 13 },
  "7b": { hidden: 4096, layers: 32, heads: 32, kvHeads: 32, intermediate: 11008, vocab: 100534, context: 8192, seed: 7 },
  "1b": { hidden: 2048, layers: 16, heads: 16, kvHeads: 16, intermediate: 5504, vocab: 100534, context: 4096, seed: 1 },
};

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const flag = (name: string) => process.argv.includes(`--${name}`);
const log = (m: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${m}\n`);

/** Random blocks of ggml type `type` for a [rows, cols] tensor: xorshift bytes, f16 scales in ±[1e-3, 1e-2]. */
function randomBlocks(type: number, rows: number, cols: number, seed: number): Uint8Array {
  const t = GGML_TYPES.get(type)!;
  const nb = (rows * cols) / t.blockSize;
  const out = new Uint8Array(nb * t.typeSize);
  const u32 = new Uint32Array(out.buffer, 0, out.length >> 2);
  let x = seed | 1;
  for (let i = 0; i < u32.length; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    u32[i] = x;
  }
  const name = t.name.toLowerCase();
  const fields = isBlockFormat(name) ? BLOCK_GEOMETRY[name].f16 : []; // (F16 fallback rows: raw random bits)
  // a handful of scale values, cycled: cheap, finite, both signs
  const scales = Array.from({ length: 16 }, (_, i) => f32ToF16((i % 2 ? -1 : 1) * (0.001 + 0.0006 * i)));
  for (let b = 0, o = 0; b < nb; b++, o += t.typeSize) {
    for (const f of fields) {
      const h = scales[(b + f) & 15];
      out[o + f] = h & 255;
      out[o + f + 1] = h >> 8;
    }
  }
  return out;
}

/** Writes the file through exportGguf: 2-D tensors as stored random blocks, norms as ones. */
function writeModel(spec: SyntheticSpec, type: ExportType, path: string): void {
  const cfg = parseConfig(configJson(spec, "f16") as never, "synthetic config");
  const plan = tensorPlan(spec);
  const byName = new Map(plan.map((t) => [t.name, t]));
  const source: TensorSource = {
    names: () => plan.map((t) => t.name),
    has: (n) => byName.has(n),
    info: (n) => ({ name: n, dtype: "f32", shape: byName.get(n)!.shape, file: "synthetic" }),
    read: (n) => {
      const shape = byName.get(n)!.shape;
      if (shape.length !== 1) throw new Error(`${n}: 2-D tensors are written as stored blocks`);
      return { dtype: "f32", shape, data: new Float32Array(shape[0]).fill(1) };
    },
    close: () => {},
  };
  let seed = spec.seed;
  const t0 = performance.now();
  exportGguf(source, cfg, syntheticVocab(spec.vocab), path, {
    type, name: "synthetic-xverse",
    stored: (hf) => {
      const shape = byName.get(hf)?.shape;
      if (!shape || shape.length !== 2) return null;
      const { type: ggml } = exportTensorType(type, hfToGguf(hf)!, shape[1], spec.layers);
      const s = (seed = (seed * 1103515245 + 12345) >>> 0);
      return { type: ggml, data: () => randomBlocks(ggml, shape[0], shape[1], s) };
    },
    onProgress: (done, total) => {
      if (done % 40 === 0 || done === total) log(`  writing: ${done} / ${total} tensors`);
    },
  });
  log(`wrote ${path}: ${(statSync(path).size / 2 ** 30).toFixed(2)} GiB in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

async function main(): Promise<void> {
  if (process.argv.includes("--load-child")) return loadChildMain();
  const shape = arg("shape") ?? "13b";
  const spec = SHAPES[shape];
  if (!spec) throw new Error(`--shape must be one of ${Object.keys(SHAPES).join(", ")}`);
  const type = (arg("type") ?? "q4_k_m") as ExportType;
  if (!["q4_k_m", "q5_k_m", "q6_k", "q8_0", "q4_0"].includes(type)) throw new Error(`--type: q4_k_m, q5_k_m, q6_k, q8_0 or q4_0`);
  const m = machineInfo();
  const threads = Number(arg("threads") ?? m.physical);
  const dir = arg("dir") ?? tmpdir();
  const path = join(dir, `xverse-${shape}-shape-${type}.gguf`);

  console.log(`# xverse.ts: loading a ${shape}-shaped ${type.toUpperCase()} GGUF`);
  console.log(`machine: ${m.cpu}, ${m.physical} physical / ${m.logical} logical cores, ${m.memGiB.toFixed(0)} GiB; threads ${threads}`);
  console.log(`model: ${describe(spec)}; ${(paramCount(spec).total / 1e9).toFixed(2)} B parameters, random weights`);
  console.log(`load average at start: ${loadAverage()}`);
  if (!existsSync(path)) {
    const free = statfsSync(dir).bavail * statfsSync(dir).bsize;
    const need = paramCount(spec).total * 0.75; // q4_k_m ≈ 4.8 bits / weight, q8_0 8.5: a rough upper guess for q4/q5
    if (free < need) throw new Error(`${dir}: ${(free / 2 ** 30).toFixed(1)} GiB free, the file needs about ${(need / 2 ** 30).toFixed(1)} GiB; pass --dir`);
    log(`writing ${path} …`);
    writeModel(spec, type, path);
  }
  const fileGiB = statSync(path).size / 2 ** 30;
  const script = fileURLToPath(import.meta.url);
  const rows: [string, LoadResult][] = [];
  try {
    log("ours: 1 warm-up + 3 fresh-process loads");
    rows.push(["ours", measureLoad(script, "ours", path, threads)]);
    if (!flag("skip-llama")) {
      log("llama.cpp: 1 warm-up + 3 fresh-process loads");
      rows.push(["llama.cpp", measureLoad(script, "llama", path, threads)]);
    }
  } finally {
    if (!flag("keep")) rmSync(path, { force: true });
  }
  console.log("");
  console.log(`file: ${fileGiB.toFixed(2)} GiB. Each engine in a fresh process, warm page cache, median of 3:`);
  console.log("");
  console.log("| engine | load ms | load → first token ms (16-token prompt) | RSS after MiB |");
  console.log("|---|---|---|---|");
  for (const [name, r] of rows) console.log(`| ${name} | ${r.loadMs.toFixed(0)} | ${r.firstMs.toFixed(0)} | ${r.rssMiB.toFixed(0)} |`);
  console.log("");
  console.log(`load average at end: ${loadAverage()}`);
  if (rows.length === 2) console.log(`ratio_load_${shape}_${type}: ${(rows[1][1].firstMs / rows[0][1].firstMs).toFixed(2)}`);
}

main().catch(benchFailed);
