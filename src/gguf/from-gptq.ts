/**
 * `xverse convert` from a GPTQ / AWQ checkpoint: the float view the GGUF exporter reads (each packed projection
 * as its dequantized f32 [N, K] matrix, exactly W = scale · (q − zero)), and the projections a GGUF block type
 * holds exactly, copied without a float round trip:
 * - int4, zero 8 everywhere (symmetric GPTQ) → Q4_0: d = scale, q = u (w = d · (u − 8));
 * - int4 with other zeros (asymmetric GPTQ, AWQ) → Q4_1: d = scale, m = −scale · zero, when every m is an f16;
 * - int4 or int8 whose u − zero fits int8 → Q8_0: d = scale, q = u − zero.
 * All need group_size a multiple of 32 (a block must lie in one group) and no desc_act column order (GGUF keeps
 * columns in input order). Anything else is dequantized and requantized to --type like a float checkpoint.
 */
import type { Weight } from "../backend/backend.js";
import type { XverseConfig } from "../config.js";
import { describe, type GptqSpec, readGptqWeight } from "../io/gptq.js";
import type { TensorInfo, TensorSource } from "../io/source.js";
import { dequantize } from "../quant/quantize.js";
import { f16ToF32, f32ToF16 } from "../tensor.js";
import { exportGguf, type ExportOptions, type ExportResult, type GgufVocab } from "./export.js";
import { permuteRopeRows, ropeRole } from "./names.js";
import { GGML, GGML_TYPES } from "./types.js";

const PACKED = /^(.*)\.(qweight|qzeros|scales|g_idx)$/;

/**
 * Writes a GPTQ / AWQ checkpoint (`source` as opened from its directory) as GGUF: exact block copies where possible
 * (see the file comment), the rest dequantized and requantized to `opts.type`. `notes` says which was which.
 */
export function exportGptqGguf(source: TensorSource, spec: GptqSpec, config: XverseConfig, tokenizer: string | GgufVocab, out: string,
  opts: ExportOptions): ExportResult & { notes: string[] } {
  const src = gptqFloatSource(source, spec);
  const why = new Map<string, string>();
  const exact = gptqExactTensors(src, config, opts.type, why);
  const copied = new Map<string, number>();
  const r = exportGguf(src, config, tokenizer, out, {
    ...opts,
    stored: (hf) => {
      const t = exact(hf);
      if (t) copied.set(hf, t.type);
      return t;
    },
  });
  const notes: string[] = [];
  const byType = new Map<string, number>();
  for (const t of copied.values()) byType.set(GGML_TYPES.get(t)!.name, (byType.get(GGML_TYPES.get(t)!.name) ?? 0) + 1);
  for (const [t, n] of byType) notes.push(`${n} ${describe(spec)} projection(s) copied exactly as ${t}`);
  const reasons = new Map<string, number>();
  for (const w of why.values()) reasons.set(w, (reasons.get(w) ?? 0) + 1);
  for (const [w, n] of reasons) notes.push(`${n} projection(s) dequantized and requantized to ${opts.type} or its fallback type (${w})`);
  return { ...r, notes };
}

/** [N, K] of a packed projection from its qweight's shape. */
function packedShape(spec: GptqSpec, qweight: number[]): [number, number] {
  return spec.method === "gptq" ? [qweight[1], (qweight[0] * 32) / spec.bits] : [qweight[1] * 8, qweight[0]];
}

/**
 * `source` with every `<prefix>.qweight` (+ qzeros, scales, g_idx) replaced by `<prefix>.weight`, read as the
 * dequantized f32 matrix. `weight(prefix)` gives the packed projection as our Weight (for the exact copies).
 */
export function gptqFloatSource(source: TensorSource, spec: GptqSpec): TensorSource & { weight(hf: string): Weight | null } {
  const names: string[] = [];
  const packed = new Map<string, [number, number]>(); // "<prefix>.weight" → [N, K]
  for (const n of source.names()) {
    const m = PACKED.exec(n);
    if (!m) { names.push(n); continue; }
    if (m[2] !== "qweight") continue;
    const hf = `${m[1]}.weight`;
    packed.set(hf, packedShape(spec, source.info(n).shape));
    names.push(hf);
  }
  const weight = (hf: string): Weight | null => {
    const shape = packed.get(hf);
    return shape ? readGptqWeight(spec, source, hf.replace(/\.weight$/, ""), shape[0], shape[1]) : null;
  };
  return {
    names: () => names.slice(),
    has: (n) => packed.has(n) || (!PACKED.test(n) && source.has(n)),
    info: (n): TensorInfo => {
      const shape = packed.get(n);
      return shape ? { name: n, dtype: "f32", shape: [...shape], file: source.info(n.replace(/\.weight$/, ".qweight")).file } : source.info(n);
    },
    read: (n) => {
      const w = weight(n);
      return w ? { dtype: "f32", shape: [w.rows, w.cols], data: dequantize(w) } : source.read(n);
    },
    metadata: source.metadata ? () => source.metadata!() : undefined,
    close: () => source.close(),
    weight,
  };
}

/** A projection written as stored: its ggml type and the bytes (rows in GGUF order). */
export interface ExactTensor {
  type: number;
  data: () => Uint8Array;
}

/** Which ggml types count as "exact copies" for each --type: the legacy 32-blocks; K-quants and floats requantize. */
const EXACT_FOR: Record<string, readonly number[]> = {
  q4_0: [GGML.Q4_0, GGML.Q4_1],
  q8_0: [GGML.Q8_0],
};

/**
 * The exporter's `stored` hook: for a packed projection and the --type asked for, the exact GGUF form if there is
 * one (see the file comment), else null (the exporter dequantizes and requantizes it). `why` collects, per
 * projection that is not copied exactly, the reason.
 */
export function gptqExactTensors(src: ReturnType<typeof gptqFloatSource>, config: XverseConfig, type: string, why: Map<string, string>):
  (hf: string) => ExactTensor | null {
  return (hf) => {
    const w = src.weight(hf);
    if (!w) return null;
    const allowed: readonly number[] | undefined = EXACT_FOR[type];
    const reason = !allowed ? `--type ${type} has no exact form of int${w.format === "q8_group" ? 8 : 4} groups`
      : w.perm ? "desc_act column order"
      : w.groupSize! % 32 !== 0 ? `group_size ${w.groupSize} is not a multiple of 32`
      : null;
    if (reason) { why.set(hf, reason); return null; }
    // decide now (the header needs the type); build the bytes from a fresh read when the writer gets there, so
    // the packed model is never held whole
    const build: (w: Weight) => ExactTensor | null = allowed!.includes(GGML.Q4_0) ? int4Exact : q8Exact;
    const ggmlType = build(w)?.type;
    const t = ggmlType === undefined ? null : { type: ggmlType, data: () => build(src.weight(hf)!)!.data() };
    if (!t) {
      why.set(hf, w.format === "q8_group" && type === "q4_0" ? "int8 weights in a 4-bit type" : "zero points not exactly representable in its blocks");
      return null;
    }
    const role = ropeRole(hf);
    if (!role) return t;
    // q/k rows go to llama.cpp's adjacent-pair RoPE order: whole rows of blocks move, bytes unchanged
    const nHeads = role === "q" ? config.numHeads : config.numKvHeads;
    return { type: t.type, data: () => { const b = t.data(); return permuteRopeRows(b, nHeads, b.length / w.rows, true); } };
  };
}

function f16Exact(x: number): number | null {
  const h = f32ToF16(x);
  return f16ToF32(h) === x ? h : null;
}

/** int4 groups → Q4_0 (no mins) or Q4_1 (mins with f16-exact m = min − 8·scale); null otherwise. */
function int4Exact(w: Weight): ExactTensor | null {
  if (w.format !== "q4_group") return null;
  const { rows, cols } = w;
  const g = w.groupSize!, ng = cols / g, nb = cols / 32;
  const scales = w.scales!, mins = w.mins;
  // w = q·s + min with q = u − 8 → d = s, m = min − 8·s (= −s·zero); both must survive f16
  const dm = new Uint16Array(rows * nb * 2);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < nb; b++) {
      const i = r * ng + Math.floor((b * 32) / g);
      const d = f16Exact(scales[i]);
      const m = mins ? f16Exact(Math.fround(mins[i] - 8 * scales[i])) : 0;
      if (d === null || m === null) return null;
      dm[(r * nb + b) * 2] = d;
      dm[(r * nb + b) * 2 + 1] = m;
    }
  }
  const q4_1 = mins !== undefined;
  const size = q4_1 ? 20 : 18;
  const data = w.data as Uint8Array;
  return {
    type: q4_1 ? GGML.Q4_1 : GGML.Q4_0,
    data: () => {
      const out = new Uint8Array(rows * nb * size);
      for (let r = 0; r < rows; r++) {
        for (let b = 0; b < nb; b++) {
          const o = (r * nb + b) * size;
          const k = r * nb + b;
          out[o] = dm[2 * k] & 255; out[o + 1] = dm[2 * k] >> 8;
          if (q4_1) { out[o + 2] = dm[2 * k + 1] & 255; out[o + 3] = dm[2 * k + 1] >> 8; }
          const qs = o + (q4_1 ? 4 : 2);
          const base = (r * cols + b * 32) / 2; // our byte j: columns 2j (low), 2j + 1 (high), nibble = u ^ 8
          const u = (c: number) => ((data[base + (c >> 1)] >> ((c & 1) * 4)) & 15) ^ 8;
          for (let j = 0; j < 16; j++) out[qs + j] = u(j) | (u(j + 16) << 4); // ggml: column j low, j + 16 high
        }
      }
      return out;
    },
  };
}

/** int4 / int8 groups → Q8_0 with q = u − zero, when that fits int8 and the scale is an f16; null otherwise. */
function q8Exact(w: Weight): ExactTensor | null {
  const { rows, cols } = w;
  const g = w.groupSize!, ng = cols / g, nb = cols / 32;
  const scales = w.scales!, mins = w.mins;
  const int4 = w.format === "q4_group";
  const qAt = int4
    ? (r: number, c: number) => ((((w.data as Uint8Array)[(r * cols + c) >> 1] >> ((c & 1) * 4)) & 15) ^ 8) - 8
    : (r: number, c: number) => (w.data as Int8Array)[r * cols + c];
  // w = q·s + min = s · (q + min / s): the integer shift min / s is 8 − zero (int4) or 128 − zero (int8)
  const shift = new Int32Array(rows * ng);
  const d = new Uint16Array(rows * ng);
  for (let i = 0; i < rows * ng; i++) {
    const h = f16Exact(scales[i]);
    if (h === null) return null;
    d[i] = h;
    const m = mins ? mins[i] : 0;
    const s = scales[i];
    const sh = s === 0 ? 0 : m / s;
    if (!Number.isInteger(sh) || (s === 0 && m !== 0)) return null;
    shift[i] = sh;
  }
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = qAt(r, c) + shift[r * ng + Math.floor(c / g)];
      if (v < -128 || v > 127) return null;
    }
  }
  return {
    type: GGML.Q8_0,
    data: () => {
      const out = new Uint8Array(rows * nb * 34);
      for (let r = 0; r < rows; r++) {
        for (let b = 0; b < nb; b++) {
          const i = r * ng + Math.floor((b * 32) / g);
          const o = (r * nb + b) * 34;
          out[o] = d[i] & 255; out[o + 1] = d[i] >> 8;
          for (let j = 0; j < 32; j++) out[o + 2 + j] = (qAt(r, b * 32 + j) + shift[i]) & 255;
        }
      }
      return out;
    },
  };
}
