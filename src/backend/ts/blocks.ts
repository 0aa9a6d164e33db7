/**
 * GGUF block formats as weights (the spec the native kernels are tested against): a row of a [rows, cols] weight
 * is cols / values ggml blocks, little-endian structs exactly as stored in the file, and W[r, :] is the ggml
 * reference dequantization of those blocks. The per-block decoders below follow ggml's block layouts
 * (ggml-common.h) and its scalar dequantize_row_* definitions, re-written from those definitions; arithmetic is
 * rounded to f32 (Math.fround) where ggml computes in float, so rows match llama.cpp's reference path bit for bit.
 * src/gguf/quants.ts uses these decoders for whole tensors.
 */
import type { Weight, WeightFormat } from "../backend.js";
import { f16Table, f16ToF32 } from "../../tensor.js";
import { XverseError } from "../../errors.js";

/** The block formats, named as GGUF names the types, in lower case. */
export type BlockFormat = "q4_0" | "q4_1" | "q5_0" | "q5_1" | "q8_0" | "q2_k" | "q3_k" | "q4_k" | "q5_k" | "q6_k";

/** Values and bytes per block (ggml's block sizes: 32 for the legacy types, QK_K = 256 for the K-quants). */
/**
 * Values and bytes per block, and the byte offsets of the block's f16 fields (d, and dmin / m where the type has
 * one), per ggml-common.h. Every other bit pattern of a block is a valid quant, which is what lets tests and
 * benchmarks build random blocks: random bytes with sane values written at `f16`.
 */
export const BLOCK_GEOMETRY: Readonly<Record<BlockFormat, { values: number; bytes: number; f16: readonly number[] }>> = {
  q4_0: { values: 32, bytes: 18, f16: [0] }, q4_1: { values: 32, bytes: 20, f16: [0, 2] },
  q5_0: { values: 32, bytes: 22, f16: [0] }, q5_1: { values: 32, bytes: 24, f16: [0, 2] },
  q8_0: { values: 32, bytes: 34, f16: [0] }, q2_k: { values: 256, bytes: 84, f16: [80, 82] },
  q3_k: { values: 256, bytes: 110, f16: [108] }, q4_k: { values: 256, bytes: 144, f16: [0, 2] },
  q5_k: { values: 256, bytes: 176, f16: [0, 2] }, q6_k: { values: 256, bytes: 210, f16: [208] },
};

export function isBlockFormat(f: WeightFormat | string): f is BlockFormat {
  return Object.prototype.hasOwnProperty.call(BLOCK_GEOMETRY, f);
}

/**
 * Bytes of one row of `cols` values; throws a clear error when cols is not a whole number of blocks (`what`
 * names the tensor).
 */
export function blockRowBytes(format: BlockFormat, cols: number, what = "weight"): number {
  const g = BLOCK_GEOMETRY[format];
  if (!(Number.isInteger(cols) && cols >= 0 && cols % g.values === 0)) {
    throw new XverseError("bad_weight", `${what}: a ${format} row holds whole blocks of ${g.values} values, but it has ${cols} columns; re-export the model with a type whose block size divides ${cols} (e.g. f16 or q8_0)`);
  }
  return (cols / g.values) * g.bytes;
}

/** Checks a block-format Weight: a Uint8Array of at least rows × row bytes. */
export function checkBlockWeight(w: Weight, what = "weight"): void {
  const f = w.format as BlockFormat;
  const need = w.rows * blockRowBytes(f, w.cols, what);
  if (!(w.data instanceof Uint8Array)) {
    throw new XverseError("bad_weight", `${what}: ${f} data must be a Uint8Array of raw blocks, got ${(w.data as object | undefined)?.constructor?.name}`);
  }
  if (w.data.length < need) {
    throw new XverseError("bad_weight", `${what}: ${f} [${w.rows}, ${w.cols}] needs ${need} bytes of blocks, has ${w.data.length}; the file is truncated or the shape is wrong`);
  }
}

const fr = Math.fround;
const QK_K = 256;

// f16 → f32 through a 64K-entry table: dequantizing a 13B model calls it billions of times.
const F16_TABLE = f16Table();
const h = (b: Uint8Array, o: number): number => F16_TABLE[b[o] | (b[o + 1] << 8)];

/** Decodes one block at byte o of b into y[p … p + values). */
export type BlockDecoder = (b: Uint8Array, o: number, y: Float32Array, p: number) => void;

/** Q4_0 (32 elems, 18 bytes): f16 d; u8 qs[16]. x[j] = (qs[j] & 15) − 8, x[j+16] = (qs[j] >> 4) − 8; y = x·d. */
function deqQ4_0(b: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = h(b, o);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 2 + j];
    y[p + j] = ((q & 15) - 8) * d;
    y[p + j + 16] = ((q >> 4) - 8) * d;
  }
}

/** Q4_1 (32, 20): f16 d, f16 m; u8 qs[16]. y = x·d + m with x the unsigned nibble. */
function deqQ4_1(b: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = h(b, o), m = h(b, o + 2);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 4 + j];
    y[p + j] = fr((q & 15) * d) + m;
    y[p + j + 16] = fr((q >> 4) * d) + m;
  }
}

/** Q5_0 (32, 22): f16 d; u32 qh (bit j = 5th bit of element j); u8 qs[16] low nibbles. x = 5-bit − 16. */
function deqQ5_0(b: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = h(b, o);
  const qh = (b[o + 2] | (b[o + 3] << 8) | (b[o + 4] << 16) | (b[o + 5] << 24)) >>> 0;
  for (let j = 0; j < 16; j++) {
    const q = b[o + 6 + j];
    const x0 = ((q & 15) | (((qh >>> j) & 1) << 4)) - 16;
    const x1 = ((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16;
    y[p + j] = x0 * d;
    y[p + j + 16] = x1 * d;
  }
}

/** Q5_1 (32, 24): f16 d, f16 m; u32 qh; u8 qs[16]. y = x·d + m, x the unsigned 5-bit value. */
function deqQ5_1(b: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = h(b, o), m = h(b, o + 2);
  const qh = (b[o + 4] | (b[o + 5] << 8) | (b[o + 6] << 16) | (b[o + 7] << 24)) >>> 0;
  for (let j = 0; j < 16; j++) {
    const q = b[o + 8 + j];
    const x0 = (q & 15) | (((qh >>> j) & 1) << 4);
    const x1 = (q >> 4) | (((qh >>> (j + 16)) & 1) << 4);
    y[p + j] = fr(x0 * d) + m;
    y[p + j + 16] = fr(x1 * d) + m;
  }
}

/** Q8_0 (32, 34): f16 d; i8 qs[32]. y = qs·d. */
function deqQ8_0(b: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = h(b, o);
  for (let j = 0; j < 32; j++) y[p + j] = ((b[o + 2 + j] << 24) >> 24) * d;
}

/**
 * Q2_K (256, 84): u8 scales[16] (low nibble scale, high nibble min); u8 qs[64] (2-bit, 4 per byte);
 * f16 d, f16 dmin. Two 128-element halves; in each, shift 0,2,4,6 walks 4 groups of 32 = two 16-element
 * sub-blocks (qs[l], qs[l+16]), each with its own scale byte. y = d·sc·q − dmin·m.
 */
function deqQ2_K(b: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = h(b, o + 80), dmin = h(b, o + 82);
  let is = 0, q = o + 16;
  for (let n = 0; n < QK_K; n += 128) {
    for (let shift = 0; shift < 8; shift += 2) {
      for (let half = 0; half < 2; half++) {
        const sc = b[o + is++];
        const dl = fr(d * (sc & 15)), ml = fr(dmin * (sc >> 4));
        for (let l = 0; l < 16; l++) y[p++] = fr(dl * ((b[q + l + 16 * half] >> shift) & 3)) - ml;
      }
    }
    q += 32;
  }
}

/**
 * Q3_K (256, 110): u8 hmask[32] (3rd bit, inverted: set → +0, clear → −4); u8 qs[64] (low 2 bits);
 * u8 scales[12] (16 six-bit scales, packed: low 4 bits in bytes 0–7, high 2 bits in bytes 8–11); f16 d.
 * y = d·(scale − 32)·(q2 − (hbit ? 0 : 4)).
 */
const Q3_SCALES = new Int8Array(16); // reused: one block at a time
function deqQ3_K(b: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = h(b, o + 108);
  const s = o + 96;
  const scales = Q3_SCALES;
  for (let i = 0; i < 16; i++) {
    // Scale i: low nibble from byte i%8 (low nibble for i<8, high for i≥8), top 2 bits from byte 8 + i%4.
    const lo = i < 8 ? b[s + i] & 15 : b[s + i - 8] >> 4;
    const hi = (b[s + 8 + (i % 4)] >> (2 * Math.floor(i / 4))) & 3;
    scales[i] = (lo | (hi << 4)) - 32;
  }
  let is = 0, q = o + 32, m = 1;
  for (let n = 0; n < QK_K; n += 128) {
    for (let shift = 0; shift < 8; shift += 2) {
      for (let half = 0; half < 2; half++) {
        const dl = fr(d * scales[is++]);
        for (let l = 0; l < 16; l++) {
          const k = l + 16 * half;
          const v = ((b[q + k] >> shift) & 3) - (b[o + k] & m ? 0 : 4);
          y[p++] = dl * v;
        }
      }
      m <<= 1;
    }
    q += 32;
  }
}

/** The 6-bit (scale, min) pair j of a Q4_K/Q5_K block's 12-byte scales field (ggml get_scale_min_k4). */
function scaleMinK4(b: Uint8Array, s: number, j: number): [number, number] {
  if (j < 4) return [b[s + j] & 63, b[s + j + 4] & 63];
  return [(b[s + j + 4] & 15) | ((b[s + j - 4] >> 6) << 4), (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)];
}

/** Q4_K (256, 144): f16 d, f16 dmin; u8 scales[12] (8 six-bit scale/min pairs); u8 qs[128]. 4 × 64 elems. */
function deqQ4_K(b: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = h(b, o), dmin = h(b, o + 2);
  let q = o + 16;
  for (let is = 0; is < 8; is += 2) {
    const [sc1, m1] = scaleMinK4(b, o + 4, is), [sc2, m2] = scaleMinK4(b, o + 4, is + 1);
    const d1 = fr(d * sc1), mm1 = fr(dmin * m1), d2 = fr(d * sc2), mm2 = fr(dmin * m2);
    for (let l = 0; l < 32; l++) y[p + l] = fr(d1 * (b[q + l] & 15)) - mm1;
    for (let l = 0; l < 32; l++) y[p + 32 + l] = fr(d2 * (b[q + l] >> 4)) - mm2;
    p += 64;
    q += 32;
  }
}

/** Q5_K (256, 176): f16 d, f16 dmin; u8 scales[12]; u8 qh[32] (5th bits, 2 per 64-group); u8 qs[128]. */
function deqQ5_K(b: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = h(b, o), dmin = h(b, o + 2);
  const qh = o + 16;
  let q = o + 48, u1 = 1, u2 = 2;
  for (let is = 0; is < 8; is += 2) {
    const [sc1, m1] = scaleMinK4(b, o + 4, is), [sc2, m2] = scaleMinK4(b, o + 4, is + 1);
    const d1 = fr(d * sc1), mm1 = fr(dmin * m1), d2 = fr(d * sc2), mm2 = fr(dmin * m2);
    for (let l = 0; l < 32; l++) y[p + l] = fr(d1 * ((b[q + l] & 15) + (b[qh + l] & u1 ? 16 : 0))) - mm1;
    for (let l = 0; l < 32; l++) y[p + 32 + l] = fr(d2 * ((b[q + l] >> 4) + (b[qh + l] & u2 ? 16 : 0))) - mm2;
    p += 64;
    q += 32;
    u1 <<= 2;
    u2 <<= 2;
  }
}

/**
 * Q6_K (256, 210): u8 ql[128] (low 4 bits), u8 qh[64] (high 2 bits), i8 scales[16], f16 d.
 * Per 128-element half: element l+32k (k = 0..3) takes ql[l + 32(k&1)] nibble k>>1 and qh[l] bits 2k..2k+1;
 * value − 32, times d·scales[l/16 + 2k].
 */
function deqQ6_K(b: Uint8Array, o: number, y: Float32Array, p: number): void {
  const d = h(b, o + 208);
  let ql = o, qh = o + 128, sc = o + 192;
  for (let n = 0; n < QK_K; n += 128) {
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const hb = b[qh + l];
      const q1 = ((b[ql + l] & 15) | ((hb & 3) << 4)) - 32;
      const q2 = ((b[ql + l + 32] & 15) | (((hb >> 2) & 3) << 4)) - 32;
      const q3 = ((b[ql + l] >> 4) | (((hb >> 4) & 3) << 4)) - 32;
      const q4 = ((b[ql + l + 32] >> 4) | (((hb >> 6) & 3) << 4)) - 32;
      const s = sc + is;
      y[p + l] = fr(d * ((b[s] << 24) >> 24)) * q1;
      y[p + l + 32] = fr(d * ((b[s + 2] << 24) >> 24)) * q2;
      y[p + l + 64] = fr(d * ((b[s + 4] << 24) >> 24)) * q3;
      y[p + l + 96] = fr(d * ((b[s + 6] << 24) >> 24)) * q4;
    }
    p += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

/** The decoder of each block format. */
export const BLOCK_DECODERS: Readonly<Record<BlockFormat, BlockDecoder>> = {
  q4_0: deqQ4_0, q4_1: deqQ4_1, q5_0: deqQ5_0, q5_1: deqQ5_1, q8_0: deqQ8_0,
  q2_k: deqQ2_K, q3_k: deqQ3_K, q4_k: deqQ4_K, q5_k: deqQ5_K, q6_k: deqQ6_K,
};

/** Row r of a block-format weight → out[0 … cols). */
export function decodeBlockRow(w: Weight, r: number, out: Float32Array): void {
  const f = w.format as BlockFormat;
  const g = BLOCK_GEOMETRY[f];
  const fn = BLOCK_DECODERS[f];
  const nb = w.cols / g.values;
  const b = w.data as Uint8Array;
  const o = r * nb * g.bytes;
  for (let i = 0; i < nb; i++) fn(b, o + i * g.bytes, out, i * g.values);
}

/**
 * The native backend's Q4_0 repack (native/src/repack.cc), stated in TS: Q4_0 row bytes (per 32 columns: f16 d, then 16 bytes with column j in the low nibble of byte j and column
 * j+16 in the high nibble) → q4_group data (column 2k in the low nibble of byte k, two's complement) + scales.
 */
export function q4_0ToGroupWeight(bytes: Uint8Array, rows: number, cols: number): Weight {
  if (cols % 32 !== 0) throw new Error(`q4_0ToGroupWeight: ${cols} columns are not a multiple of 32`);
  const nb = (rows * cols) / 32;
  const data = new Uint8Array((rows * cols) / 2);
  const scales = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    const o = b * 18;
    scales[b] = f16ToF32(bytes[o] | (bytes[o + 1] << 8));
    const dst = b * 16; // 32 columns = 16 bytes, and blocks never straddle rows
    // (q − 8) as a two's-complement nibble is q ^ 8
    for (let k = 0; k < 8; k++) {
      const a = bytes[o + 2 + 2 * k], c = bytes[o + 2 + 2 * k + 1];
      data[dst + k] = ((a & 15) ^ 8) | (((c & 15) ^ 8) << 4); // columns 2k, 2k+1 (low nibbles)
      data[dst + 8 + k] = ((a >> 4) ^ 8) | (((c >> 4) ^ 8) << 4); // columns 16+2k, 16+2k+1 (high nibbles)
    }
  }
  return { format: "q4_group", rows, cols, data, scales, groupSize: 32 };
}
