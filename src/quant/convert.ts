/**
 * A float checkpoint directory → a quantized one (the library behind `xverse quantize`).
 * One tensor is in memory at a time; the output is assembled in a sibling temp directory and renamed into place
 * only when complete, so an error or a crash never leaves a half-written model under the requested name.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { parseConfig, readJsonFile } from "../config.js";
import { XverseError } from "../errors.js";
import { removeStaleTemps, writeError } from "../io/atomic.js";
import type { TensorSource } from "../io/source.js";
import { writeSafetensors, type TensorToWrite } from "../io/safetensors.js";
import type { Tensor } from "../tensor.js";
import { isQuantizedProjection, QUANT_METADATA, scaleName, weightToTensors } from "./disk.js";
import { quantizeWeight, type QuantBits } from "./quantize.js";

export interface QuantizeDirOptions {
  /** The model's tensors (e.g. openCheckpoint(modelDir)). */
  source: TensorSource;
  /** Where config.json, tokenizer and generation files are read from. */
  modelDir: string;
  outDir: string;
  bits: QuantBits;
  /** int4 only: 0 = one scale per row (XVERSE's scheme), else 32 / 64 / 128 … columns per scale. */
  groupSize?: number;
  /** Called after each checkpoint tensor is written. */
  onProgress?: (done: number, total: number, name: string) => void;
}

export interface QuantizeDirResult {
  outDir: string;
  quantized: number;
  kept: number;
  bytes: number;
}

/**
 * Weight files and indexes are replaced by our single model.safetensors; everything else is copied except
 * Python modeling code: XVERSE's remote code would build its own QuantizedLinear from quantization_bit, and its
 * int4 nibble order and lack of group-wise scales are not guaranteed to match ours — better an error than
 * silently wrong weights when someone loads the directory with trust_remote_code.
 */
function isSkippedFile(f: string): boolean {
  return /\.(safetensors|bin|pt|pth|gguf|ckpt|h5|msgpack|py|pyc)$/.test(f) || /\.index\.json$/.test(f) || f === "config.json";
}

function quantizedShapes(shape: number[], bits: QuantBits, groupSize: number): { w: number[]; s: number[] } {
  const [rows, cols] = shape;
  return {
    w: [rows, bits === 8 ? cols : cols / 2],
    s: groupSize ? [rows, cols / groupSize] : [rows],
  };
}

export function quantizeCheckpoint(opts: QuantizeDirOptions): QuantizeDirResult {
  const { source, modelDir, bits } = opts;
  const groupSize = opts.groupSize ?? 0;
  const outDir = resolve(opts.outDir);
  if (bits !== 4 && bits !== 8) throw new XverseError("bad_flag", `--bits must be 4 or 8, got ${String(bits)}`);
  if (groupSize && bits !== 4) throw new XverseError("bad_flag", `--group-size is for int4 only (got --bits ${bits})`);
  if (existsSync(outDir) && (!statSync(outDir).isDirectory() || readdirSync(outDir).length > 0)) {
    throw new XverseError("exists", `--out ${outDir} already exists and is not empty; choose a new directory or remove it first`);
  }
  const cfgPath = join(modelDir, "config.json");
  const rawCfg = readJsonFile(cfgPath);
  const cfg = parseConfig(rawCfg, cfgPath);
  if (cfg.quantizationBit) {
    throw new XverseError("unsupported", `${modelDir} is already quantized (quantization_bit ${cfg.quantizationBit}); quantize the original float checkpoint`);
  }

  // Plan every tensor before writing a byte, so a bad shape or group size fails before any work.
  const names = source.names().filter((n) => !/\.rotary_emb\.(inv_freq|cos_cached|sin_cached)$/.test(n));
  const plan: TensorToWrite[] = [];
  let quantized = 0;
  let done = 0;
  const total = names.length;
  const tick = (name: string) => opts.onProgress?.(++done, total, name);
  for (const name of names) {
    const info = source.info(name);
    if (!isQuantizedProjection(name)) {
      plan.push({ name, dtype: info.dtype, shape: info.shape, load: () => { const t = source.read(name); tick(name); return t; } });
      continue;
    }
    if (info.shape.length !== 2 || !["f32", "f16", "bf16", "f64"].includes(info.dtype)) {
      throw new XverseError("bad_checkpoint", `${name} in ${info.file}: expected a 2-D float weight, got ${info.dtype} [${info.shape}]`);
    }
    const cols = info.shape[1];
    if (bits === 4 && (cols % 2 !== 0 || (groupSize && cols % groupSize !== 0))) {
      throw new XverseError("unsupported", `${name} has ${cols} input columns, which ${groupSize ? `group size ${groupSize} does not divide` : "is odd (int4 packs pairs)"}; try another --group-size`);
    }
    quantized++;
    const shapes = quantizedShapes(info.shape, bits, groupSize);
    // The weight entry quantizes and keeps the scales for the entry right after it (writeSafetensors loads in order).
    let pendingScale: Tensor | null = null;
    plan.push({
      name, dtype: "i8", shape: shapes.w,
      load: () => {
        const { weight, scale } = weightToTensors(quantizeWeight(source.read(name), bits, groupSize));
        pendingScale = scale;
        return weight;
      },
    });
    plan.push({
      name: scaleName(name), dtype: "f32", shape: shapes.s,
      load: () => {
        const s = pendingScale;
        if (!s) throw new Error(`internal: ${name} scales requested before its weight`);
        pendingScale = null;
        tick(name);
        return s;
      },
    });
  }
  if (quantized === 0) {
    throw new XverseError("bad_checkpoint", `${modelDir} has no model.layers.N.{self_attn,mlp}.*_proj.weight tensors to quantize; is it an XVERSE/LLaMA checkpoint?`);
  }

  const tmp = join(dirname(outDir), `.${basename(outDir)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  removeStaleTemps(dirname(outDir), `.${basename(outDir)}.tmp-`);
  try {
    mkdirSync(dirname(outDir), { recursive: true });
    mkdirSync(tmp);
  } catch (e) {
    throw writeError(outDir, e, "nothing was written");
  }
  try {
    const stPath = join(tmp, "model.safetensors");
    writeSafetensors(stPath, plan, { ...QUANT_METADATA, "xverse_ts.quantization_bit": String(bits), "xverse_ts.quantization_group_size": String(groupSize) });
    const outCfg: Record<string, unknown> = { ...rawCfg, quantization_bit: bits };
    if (groupSize) outCfg.quantization_group_size = groupSize;
    else delete outCfg.quantization_group_size;
    writeFileSync(join(tmp, "config.json"), JSON.stringify(outCfg, null, 2) + "\n");
    for (const f of readdirSync(modelDir)) {
      const p = join(modelDir, f);
      if (isSkippedFile(f) || f.startsWith(".") || !statSync(p).isFile()) continue;
      copyFileSync(p, join(tmp, f));
    }
    // An empty pre-existing --out directory is replaced; rename cannot overwrite a directory.
    if (existsSync(outDir)) rmSync(outDir, { recursive: true });
    renameSync(tmp, outDir);
    return { outDir, quantized, kept: names.length - quantized, bytes: statSync(join(outDir, "model.safetensors")).size };
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw writeError(outDir, e, "the partial output was removed");
  }
}
