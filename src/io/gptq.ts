/**
 * GPTQ and AWQ checkpoints (what XVERSE's official *-GPTQ-Int4 / Int8 releases and AutoAWQ ship), read as stored:
 * the packed int32 words become our q4_group / q8_group weights (nibbles repacked, never widened to f32), with the
 * zero points as per-group `mins` and a desc_act column order as `perm` (backend.ts).
 *
 * The formats (K = in_features = cols, N = out_features = rows, gs = group size):
 * - GPTQ ("gptq" / v1 checkpoint_format): qweight int32 [K·bits/32, N] packed along K, value j of a word at bits
 *   [bits·j, bits·j + bits); qzeros int32 [K/gs, N·bits/32] packed along N, each field holding zero − 1; scales f16
 *   [K/gs, N]; g_idx int32 [K], the group of input column k. W[n, k] = scale[g_idx[k], n] · (q[k, n] − zero).
 * - AWQ (GEMM): qweight int32 [K, N/8] packed along N, nibble j of word w holding column 8w + [0,2,4,6,1,3,5,7][j];
 *   qzeros int32 [K/gs, N/8] in the same order, raw zeros; scales f16 [K/gs, N]. W[n, k] = scale · (q − zero).
 * Our form of w = scale · (u − z): q = u − 2^(bits−1) in two's complement and min = scale · (2^(bits−1) − z), so
 * w = q · scale + min exactly in f32 (both terms are small integers times an f16 scale).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Weight } from "../backend/backend.js";
import { readJsonFile } from "../config.js";
import { XverseError } from "../errors.js";
import { f16ToF32, type Tensor } from "../tensor.js";
import type { TensorSource } from "./source.js";

export interface GptqSpec {
  method: "gptq" | "awq";
  bits: 4 | 8;
  /** Columns per group; −1 in the file (one group per row) is stored here as 0 and means "all of K". */
  groupSize: number;
  descAct: boolean;
  sym: boolean;
  /** Where the settings came from, for messages. */
  file: string;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The GPTQ / AWQ settings of a model directory: `quantization_config` in config.json and/or quantize_config.json
 * (AutoGPTQ writes both; older AutoAWQ only the second, with w_bit / q_group_size). Null for a checkpoint that is
 * neither. Throws, naming the field and its value, for variants we cannot run (gptq_v2 / marlin / exllama layouts,
 * bits other than 4 and 8, AWQ GEMV, other quant_methods).
 */
export function detectGptq(dir: string): GptqSpec | null {
  const found: Array<{ file: string; cfg: Obj }> = [];
  const configPath = join(dir, "config.json");
  if (existsSync(configPath)) {
    const qc = readJsonFile(configPath).quantization_config;
    if (qc !== undefined && qc !== null) {
      if (!isObj(qc)) throw new XverseError("bad_config", `${configPath}: quantization_config must be an object`);
      found.push({ file: `${configPath} (quantization_config)`, cfg: qc });
    }
  }
  const qcPath = join(dir, "quantize_config.json");
  if (existsSync(qcPath)) found.push({ file: qcPath, cfg: readJsonFile(qcPath) });
  if (found.length === 0) return null;
  const specs = found.map(({ file, cfg }) => parseGptqConfig(cfg, file));
  const [a, b] = specs;
  if (b && (a.method !== b.method || a.bits !== b.bits || a.groupSize !== b.groupSize || a.descAct !== b.descAct)) {
    throw new XverseError("bad_config",
      `${a.file} says ${describe(a)} but ${b.file} says ${describe(b)}; make the two agree (or delete the stale one)`);
  }
  return a;
}

export function describe(s: GptqSpec): string {
  return `${s.method} int${s.bits}, group ${s.groupSize || "per row"}${s.descAct ? ", desc_act" : ""}${s.sym ? ", sym" : ", asym"}`;
}

/** One quantization config object → a spec, or an error naming the unsupported field. */
export function parseGptqConfig(cfg: Obj, file: string): GptqSpec {
  const field = (k: string, v: unknown, want: string) =>
    new XverseError("unsupported", `${file}: ${k} = ${JSON.stringify(v)} is not supported (${want})`);
  // AutoAWQ's quantize_config.json has no quant_method; its w_bit / zero_point fields say what it is
  const method = cfg.quant_method ?? (cfg.w_bit !== undefined || cfg.zero_point !== undefined ? "awq" : "gptq");
  if (method !== "gptq" && method !== "awq") {
    throw field("quant_method", method, "this engine reads \"gptq\" and \"awq\" checkpoints; dequantize the model to f16 first");
  }
  const bits = cfg.bits ?? cfg.w_bit;
  const okBits = method === "awq" ? [4] : [4, 8];
  if (typeof bits !== "number" || !okBits.includes(bits)) {
    throw field(cfg.bits !== undefined ? "bits" : "w_bit", bits, `${method} checkpoints run with bits ${okBits.join(" or ")}`);
  }
  const gsKey = cfg.group_size !== undefined ? "group_size" : "q_group_size";
  const gs = cfg[gsKey] ?? -1;
  if (typeof gs !== "number" || !Number.isInteger(gs) || (gs < 1 && gs !== -1)) {
    throw field(gsKey, gs, "a positive group size, or -1 for one group per row");
  }
  const fmt = cfg.checkpoint_format;
  if (fmt !== undefined && fmt !== "gptq") {
    throw field("checkpoint_format", fmt, "only the original \"gptq\" (v1) layout is read; re-save with checkpoint_format \"gptq\"");
  }
  if (cfg.is_marlin_format === true) throw field("is_marlin_format", true, "Marlin-repacked weights are not read; use the plain GPTQ release");
  if (method === "awq") {
    const version = cfg.version ?? "gemm";
    if (typeof version !== "string" || version.toLowerCase() !== "gemm") {
      throw field("version", version, "only AutoAWQ's GEMM layout is read (GEMV / GEMV_fast / Marlin / exllama pack differently)");
    }
    if (cfg.zero_point === false) throw field("zero_point", false, "AWQ GEMM checkpoints with zero points");
  }
  const descAct = cfg.desc_act === true;
  if (method === "awq" && descAct) throw field("desc_act", true, "AWQ has no activation order");
  return { method, bits: bits as 4 | 8, groupSize: gs === -1 ? 0 : gs, descAct, sym: method === "gptq" ? cfg.sym !== false : false, file };
}

/**
 * The loader hook for the seven projections (WeightLoadOptions.projection): `<prefix>.weight` is read from
 * `<prefix>.qweight` / qzeros / scales / g_idx. A projection left in float (AWQ's modules_to_not_convert) returns
 * null and loads as usual.
 */
export function gptqProjection(spec: GptqSpec): (name: string, source: TensorSource, rows: number, cols: number) => Weight | null {
  return (name, source, rows, cols) => {
    const prefix = name.replace(/\.weight$/, "");
    if (!source.has(`${prefix}.qweight`)) {
      if (source.has(name)) return null;
      throw new XverseError("bad_checkpoint",
        `${prefix}.qweight is missing from the checkpoint (${spec.file} says it is ${describe(spec)}); is the download complete?`);
    }
    return readGptqWeight(spec, source, prefix, rows, cols);
  };
}

/** Reads one packed projection [rows = N, cols = K] as q4_group / q8_group (+ mins, + perm for desc_act). */
export function readGptqWeight(spec: GptqSpec, source: TensorSource, prefix: string, rows: number, cols: number): Weight {
  const { bits, method } = spec;
  const N = rows, K = cols;
  const gs = spec.groupSize || K;
  const where = (t: string) => `${prefix}.${t}${source.has(`${prefix}.${t}`) ? ` in ${source.info(`${prefix}.${t}`).file}` : ""}`;
  if (K % gs !== 0) {
    throw new XverseError("unsupported", `${prefix}: group_size ${gs} does not divide in_features ${K} (${spec.file}); such checkpoints are not supported`);
  }
  const ng = K / gs;
  const perWord = 32 / bits;
  const mask = (1 << bits) - 1;
  const get = (t: string, dtype: Tensor["dtype"], shape: number[]): Tensor => {
    const name = `${prefix}.${t}`;
    if (!source.has(name)) {
      throw new XverseError("bad_checkpoint", `tensor ${name} is missing (a ${method} projection needs qweight, qzeros and scales); is the download complete?`);
    }
    const x = source.read(name);
    if (x.dtype !== dtype || x.shape.length !== shape.length || x.shape.some((d, i) => d !== shape[i])) {
      throw new XverseError("bad_checkpoint",
        `tensor ${where(t)} is ${x.dtype} [${x.shape}], expected ${dtype} [${shape}] for a ${method} int${bits} [${N}, ${K}] projection with group ${gs} (config.json)`);
    }
    return x;
  };
  if (method === "gptq" && N % perWord !== 0) {
    throw new XverseError("bad_checkpoint", `${prefix}: ${N} output features do not fill whole int32 words of qzeros (${perWord} per word)`);
  }
  if (method === "awq" && N % 8 !== 0) throw new XverseError("bad_checkpoint", `${prefix}: AWQ needs out_features (${N}) to be a multiple of 8`);
  if (method === "gptq" && K % perWord !== 0) {
    throw new XverseError("bad_checkpoint", `${prefix}: ${K} input features do not fill whole int32 words of qweight (${perWord} per word)`);
  }
  const qweight = get("qweight", "i32", method === "gptq" ? [K / perWord, N] : [K, N / 8]).data as Int32Array;
  const qzeros = get("qzeros", "i32", method === "gptq" ? [ng, N / perWord] : [ng, N / 8]).data as Int32Array;
  const scales16 = get("scales", "f16", [ng, N]).data as Uint16Array;
  const perm = method === "gptq" && source.has(`${prefix}.g_idx`) ? groupOrder(get("g_idx", "i32", [K]).data as Int32Array, gs, ng, where("g_idx")) : undefined;

  // u(k, n) and z(g, n) in the file's layout
  const awqNibble = [0, 4, 1, 5, 2, 6, 3, 7]; // column 8w + c sits in nibble awqNibble[c] (inverse of 0,2,4,6,1,3,5,7)
  const u = method === "gptq"
    ? (k: number, n: number) => (qweight[Math.floor(k / perWord) * N + n] >>> (bits * (k % perWord))) & mask
    : (k: number, n: number) => (qweight[k * (N / 8) + (n >> 3)] >>> (4 * awqNibble[n & 7])) & 15;
  const z = method === "gptq"
    ? (g: number, n: number) => ((qzeros[g * (N / perWord) + Math.floor(n / perWord)] >>> (bits * (n % perWord))) & mask) + 1
    : (g: number, n: number) => (qzeros[g * (N / 8) + (n >> 3)] >>> (4 * awqNibble[n & 7])) & 15;

  const mid = 1 << (bits - 1);
  const scales = new Float32Array(N * ng);
  const mins = new Float32Array(N * ng);
  let anyMin = false;
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < ng; g++) {
      const s = f16ToF32(scales16[g * N + n]);
      scales[n * ng + g] = s;
      const m = s * (mid - z(g, n)); // exact: an f16 times an integer below 2^9
      mins[n * ng + g] = m;
      if (m !== 0) anyMin = true;
    }
  }
  // stored column j holds input column src(j)
  const src = perm ? (j: number) => perm[j] : (j: number) => j;
  let data: Uint8Array | Int8Array;
  if (bits === 4) {
    const d = new Uint8Array((N * K) / 2);
    for (let n = 0; n < N; n++) {
      const row = (n * K) / 2;
      for (let j = 0; j < K; j += 2) d[row + j / 2] = (u(src(j), n) ^ 8) | ((u(src(j + 1), n) ^ 8) << 4); // u − 8 as a nibble is u ^ 8
    }
    data = d;
  } else {
    const d = new Int8Array(N * K);
    for (let n = 0; n < N; n++) for (let j = 0; j < K; j++) d[n * K + j] = u(src(j), n) - 128;
    data = d;
  }
  // activations "f32": the fixtures' golden logits are f32 math on these weights (backend.ts)
  const w: Weight = { format: bits === 4 ? "q4_group" : "q8_group", rows: N, cols: K, data, scales, groupSize: gs, activations: "f32" };
  if (anyMin) w.mins = mins;
  if (perm) w.perm = perm;
  return w;
}

/**
 * g_idx (the group of every input column) → the stored column order that makes groups contiguous: stored column
 * j = g·gs + i holds the i-th input column (in increasing order) of group g. Null when that is the identity
 * (desc_act off, or a monotonic g_idx). Every group must hold exactly gs columns, as GPTQ's act-order writes.
 */
function groupOrder(gIdx: Int32Array, gs: number, ng: number, where: string): Int32Array | undefined {
  const K = gIdx.length;
  const count = new Int32Array(ng);
  for (let k = 0; k < K; k++) {
    const g = gIdx[k];
    if (!(g >= 0 && g < ng)) {
      throw new XverseError("bad_checkpoint", `tensor ${where}: g_idx[${k}] = ${g} is out of range: there are ${ng} groups of ${gs}; the file is corrupt`);
    }
    count[g]++;
  }
  for (let g = 0; g < ng; g++) {
    if (count[g] !== gs) {
      throw new XverseError("unsupported", `tensor ${where}: group ${g} has ${count[g]} columns, not group_size ${gs}; uneven g_idx groups are not supported`);
    }
  }
  const perm = new Int32Array(K);
  const next = new Int32Array(ng);
  let identity = true;
  for (let k = 0; k < K; k++) {
    const g = gIdx[k];
    const j = g * gs + next[g]++;
    perm[j] = k;
    if (j !== k) identity = false;
  }
  return identity ? undefined : perm;
}
