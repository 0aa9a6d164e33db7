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

/**
 * Quantizes `len` floats of w starting at `off` with one symmetric scale; writes the integers through `put`
 * and returns the scale (0 for an all-zero run, whose integers are then all 0).
 */
function quantizeRun(w: Float32Array, off: number, len: number, qmax: number, put: (i: number, q: number) => void): number {
  let amax = 0;
  for (let i = 0; i < len; i++) {
    const a = Math.abs(w[off + i]);
    if (a > amax) amax = a;
    else if (a !== a) amax = NaN; // NaN compares false with everything: catch it here
    if (amax !== amax) break;
  }
  if (!Number.isFinite(amax)) {
    throw new XverseError("bad_weights", `cannot quantize a weight holding NaN or Infinity (near element ${off})`);
  }
  // The scale is stored as f32; divide by that stored value so dequantization uses exactly what we rounded by.
  const scale = Math.fround(amax / qmax);
  for (let i = 0; i < len; i++) {
    let q = scale === 0 ? 0 : roundHalfEven(w[off + i] / scale);
    if (q > qmax) q = qmax; // only reachable through f32 rounding of the scale
    else if (q < -qmax) q = -qmax;
    put(i, q);
  }
  return scale;
}

/** int8, one scale per row (XVERSE quantize(8)). */
export function quantizeQ8Row(w: Float32Array, rows: number, cols: number): Weight {
  checkShape(rows, cols, w.length, "quantizeQ8Row");
  const data = new Int8Array(rows * cols);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    scales[r] = quantizeRun(w, base, cols, 127, (i, q) => { data[base + i] = q; });
  }
  return { format: "q8_row", rows, cols, data, scales };
}

/** Stores a value in [-8, 7] as the nibble of column c in a packed int4 row starting at byte `rowByte`. */
function putNibble(data: Uint8Array, rowByte: number, c: number, q: number): void {
  const j = rowByte + (c >> 1);
  const nib = q & 0x0f;
  data[j] = c & 1 ? (data[j] & 0x0f) | (nib << 4) : (data[j] & 0xf0) | nib;
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
    const rowByte = (r * cols) / 2;
    scales[r] = quantizeRun(w, r * cols, cols, 7, (i, q) => putNibble(data, rowByte, i, q));
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
    const rowByte = (r * cols) / 2;
    for (let g = 0; g < groups; g++) {
      const c0 = g * groupSize;
      scales[r * groups + g] = quantizeRun(w, r * cols + c0, groupSize, 7, (i, q) => putNibble(data, rowByte, c0 + i, q));
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
  const w = toFloat32(t);
  if (bits === 8) {
    if (groupSize) throw new XverseError("unsupported", `group-wise quantization is int4 only (got --bits 8 with group size ${groupSize})`);
    return quantizeQ8Row(w, rows, cols);
  }
  if (bits === 4) return groupSize ? quantizeQ4Group(w, rows, cols, groupSize) : quantizeQ4Row(w, rows, cols);
  throw new XverseError("bad_flag", `quantization bits must be 4 or 8, got ${String(bits)}`);
}

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
    case "q4_row":
    case "q4_group": {
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
  return w.data.byteLength + (w.scales ? w.scales.byteLength : 0);
}
