/**
 * Weight-only quantization: pure functions from a float matrix to a backend Weight and back.
 *
 * XVERSE's own scheme (xverse-facts §5a): symmetric, no zero point, one scale per output row,
 * scale = max|W[row,:]| / (2^(bits−1) − 1) (÷127 for int8, ÷7 for int4), q = round(W / scale).
 * Our group-wise int4 is the same rule applied to each run of `groupSize` columns of a row (one scale per group),
 * which bounds the error by the largest value of the group instead of the row.
 *
 * Rounding is half-to-even, as torch.round does in the official quantize(), so a checkpoint quantized here and
 * there gives the same integers (scales differ only by f16 vs f32 arithmetic).
 */
import { XverseError } from "../errors.js";
import type { Weight } from "../backend/backend.js";
import { decodeRow } from "../backend/ts/matmul.js";
import { isBlockFormat } from "../backend/ts/blocks.js";
import { toFloat32, type Tensor } from "../tensor.js";

export type QuantBits = 4 | 8;
/** The group sizes we offer for group-wise int4 (0 = per row). */
export const GROUP_SIZES: readonly number[] = [32, 64, 128];

/** Round half to even (torch.round / numpy.round semantics). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; step back when that landed on an odd number from an exact half.
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function checkShape(rows: number, cols: number, n: number, what: string): void {
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows < 1 || cols < 1 || rows * cols !== n) {
    throw new XverseError("bad_shape", `${what}: a [${rows}, ${cols}] matrix needs ${rows * cols} values, got ${n}`);
  }
}

/** max |w[off … off+len)| as the f32 scale for integers up to ±qmax; 0 for an all-zero run. Rejects NaN / ±Inf. */
function runScale(w: Float32Array, off: number, len: number, qmax: number): number {
  let amax = 0;
  for (let i = off, e = off + len; i < e; i++) {
    const a = Math.abs(w[i]);
    if (a > amax) amax = a;
    else if (a !== a) amax = NaN; // NaN compares false with everything: catch it here
    if (amax !== amax) break;
  }
  if (!Number.isFinite(amax)) {
    throw new XverseError("bad_weights", `cannot quantize a weight holding NaN or Infinity (near element ${off})`);
  }
  // Stored as f32; we divide by the stored value so dequantization uses exactly what we rounded by.
  return Math.fround(amax / qmax);
}

/** round-half-even(x / scale) clamped to ±qmax (the clamp is only reachable through f32 rounding of the scale). */
function q(x: number, scale: number, qmax: number): number {
  if (scale === 0) return 0;
  const v = x / scale;
  // floor(v + 0.5) is Math.round for |v| ≤ 2^52 and several times faster in V8
  let r = Math.floor(v + 0.5);
  if (r - v === 0.5 && r % 2 !== 0) r--;
  return r > qmax ? qmax : r < -qmax ? -qmax : r;
}

/** Packs columns c0 … c0+len (c0 and len even) of a row into int4 bytes with one scale. */
function packRun(w: Float32Array, off: number, len: number, scale: number, data: Uint8Array, byteOff: number): void {
  for (let i = 0; i < len; i += 2) {
    data[byteOff + (i >> 1)] = (q(w[off + i], scale, 7) & 0x0f) | ((q(w[off + i + 1], scale, 7) & 0x0f) << 4);
  }
}

/** int8, one scale per row (XVERSE quantize(8)). */
export function quantizeQ8Row(w: Float32Array, rows: number, cols: number): Weight {
  checkShape(rows, cols, w.length, "quantizeQ8Row");
  const data = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const sc = (scales[r] = runScale(w, base, cols, 127));
    for (let i = 0; i < cols; i++) data[base + i] = q(w[base + i], sc, 127);
  }
  return { format: "q8_row", rows, cols, data, scales };
}

function checkEvenCols(cols: number, what: string): void {
  if (cols % 2 !== 0) {
    throw new XverseError("unsupported", `${what}: int4 packs two columns per byte, so in_features must be even (got ${cols})`);
  }
}

/** int4, one scale per row (XVERSE quantize(4)), packed per backend.ts. */
export function quantizeQ4Row(w: Float32Array, rows: number, cols: number): Weight {
  checkShape(rows, cols, w.length, "quantizeQ4Row");
  checkEvenCols(cols, "quantizeQ4Row");
  const data = new Uint8Array((rows * cols) / 2);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    scales[r] = runScale(w, r * cols, cols, 7);
    packRun(w, r * cols, cols, scales[r], data, (r * cols) / 2);
  }
  return { format: "q4_row", rows, cols, data, scales };
}

/** int4, one scale per `groupSize` consecutive columns of a row; scales are (rows, cols/groupSize) row-major. */
export function quantizeQ4Group(w: Float32Array, rows: number, cols: number, groupSize: number): Weight {
  checkShape(rows, cols, w.length, "quantizeQ4Group");
  checkEvenCols(cols, "quantizeQ4Group");
  if (!Number.isInteger(groupSize) || groupSize < 2 || groupSize % 2 !== 0 || cols % groupSize !== 0) {
    throw new XverseError(
      "unsupported",
      `group-wise int4: group size ${groupSize} must be even and divide in_features ${cols} (try 32, 64 or 128, or per-row with group size 0)`,
    );
  }
  const groups = cols / groupSize;
  const data = new Uint8Array((rows * cols) / 2);
  const scales = new Float32Array(rows * groups);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const off = r * cols + g * groupSize;
      const sc = (scales[r * groups + g] = runScale(w, off, groupSize, 7));
      packRun(w, off, groupSize, sc, data, off / 2);
    }
  }
  return { format: "q4_group", rows, cols, data, scales, groupSize };
}


/**
 * A 2-D float checkpoint tensor [out, in] → a quantized Weight. bits 8 → q8_row; bits 4 with groupSize 0 → q4_row;
 * bits 4 with groupSize > 0 → q4_group. This is what the loader calls for the seven projections.
 */
export function quantizeWeight(t: Tensor, bits: QuantBits, groupSize = 0): Weight {
  if (t.shape.length !== 2) {
    throw new XverseError("bad_shape", `only 2-D weights are quantized, got shape [${t.shape.join(", ")}]`);
  }
  const [rows, cols] = t.shape;
  if (bits !== 8 && bits !== 4) throw new XverseError("bad_flag", `quantization bits must be 4 or 8, got ${String(bits)}`);
  if (bits === 8 && groupSize) throw new XverseError("unsupported", `group-wise quantization is int4 only (got --bits 8 with group size ${groupSize})`);
  const quantize = (w: Float32Array, n: number): Weight =>
    bits === 8 ? quantizeQ8Row(w, n, cols) : groupSize ? quantizeQ4Group(w, n, cols, groupSize) : quantizeQ4Row(w, n, cols);
  if (t.dtype === "f32" || rows <= BLOCK_ROWS(cols)) return quantize(toFloat32(t), rows);

  // bf16 / f16 / f64: widen a block of rows at a time, so a 13B load never allocates an f32 copy of a whole matrix
  // (every scheme here is per row, so blocks quantize exactly as the whole matrix would)
  const block = BLOCK_ROWS(cols);
  let out: Weight | null = null;
  for (let r0 = 0; r0 < rows; r0 += block) {
    const n = Math.min(block, rows - r0);
    const sub: Tensor = { dtype: t.dtype, shape: [n, cols], data: t.data.subarray(r0 * cols, (r0 + n) * cols) as Tensor["data"] };
    const part = quantize(toFloat32(sub), n);
    if (!out) {
      out = { ...part, rows, data: new (part.data.constructor as Int8ArrayConstructor)((part.data.length / n) * rows), scales: new Float32Array((part.scales!.length / n) * rows) };
    }
    out.data.set(part.data as Int8Array, (part.data.length / n) * r0);
    out.scales!.set(part.scales!, (part.scales!.length / n) * r0);
  }
  return out!;
}

/** Rows per conversion block: about 1M values (4 MB of f32). */
const BLOCK_ROWS = (cols: number): number => Math.max(1, Math.floor((1 << 20) / cols));

/** The signed int4 at column c of a packed row starting at byte `rowByte`. */
export function getNibble(data: Uint8Array, rowByte: number, c: number): number {
  const b = data[rowByte + (c >> 1)];
  const nib = c & 1 ? b >> 4 : b & 0x0f;
  return nib >= 8 ? nib - 16 : nib;
}

/** Any quantized Weight back to a dense f32 [rows, cols] matrix (w = q · scale). Float formats are converted. */
export function dequantize(w: Weight): Float32Array {
  const { rows, cols } = w;
  const out = new Float32Array(rows * cols);
  // GGUF blocks, GPTQ / AWQ weights (zero points, desc_act order): the TS twin's row decoder is the definition
  const byRows = (): Float32Array => {
    for (let r = 0; r < rows; r++) decodeRow(w, r, out.subarray(r * cols, (r + 1) * cols));
    return out;
  };
  if (isBlockFormat(w.format)) return byRows();
  switch (w.format) {
    case "f32":
      out.set(w.data as Float32Array);
      return out;
    case "bf16":
    case "f16":
      return toFloat32({ dtype: w.format, shape: [rows, cols], data: w.data as Uint16Array }).slice();
    case "q8_row": {
      const q = w.data as Int8Array;
      const s = w.scales!;
      for (let r = 0; r < rows; r++) {
        const sc = s[r];
        for (let c = 0; c < cols; c++) out[r * cols + c] = q[r * cols + c] * sc;
      }
      return out;
    }
    case "q8_group":
      return byRows();
    case "q4_row":
    case "q4_group": {
      if (w.mins || w.perm) return byRows();
      const q = w.data as Uint8Array;
      const s = w.scales!;
      const gs = w.format === "q4_group" ? w.groupSize! : cols;
      const groups = cols / gs;
      for (let r = 0; r < rows; r++) {
        const rowByte = (r * cols) / 2;
        for (let c = 0; c < cols; c++) out[r * cols + c] = getNibble(q, rowByte, c) * s[r * groups + Math.floor(c / gs)];
      }
      return out;
    }
  }
}

/** Bytes a Weight occupies (data + scales): what RSS tables and the decode roofline count. */
export function weightBytes(w: Weight): number {
  return w.data.byteLength + (w.scales ? w.scales.byteLength : 0) + (w.mins?.byteLength ?? 0) + (w.perm?.byteLength ?? 0);
}
