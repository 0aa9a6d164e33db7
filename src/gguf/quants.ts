/**
 * ggml block formats → f32, and f32 → Q8_0 / Q4_0 (for writing). Each function follows the block layout and
 * the reference (scalar) dequantization of ggml's ggml-quants.c / ggml-common.h, re-written here from those
 * definitions. Arithmetic is rounded to f32 (Math.fround) where ggml computes in float, so results match
 * llama.cpp's reference path bit for bit (its SIMD paths may fuse multiply-adds: ≤ 1 ulp apart).
 *
 * Within a row, element i of block b is output element b*blockSize + i; rows are independent runs of blocks.
 */
import { f16Table, f32ToF16 } from "../tensor.js";
import { XverseError } from "../errors.js";
import { GGML, GGML_TYPES } from "./types.js";

const fr = Math.fround;
const QK_K = 256;

// f16 → f32 through a 64K-entry table: dequantizing a 13B model calls it billions of times.
const F16_TABLE = f16Table();
const h = (b: Uint8Array, o: number): number => F16_TABLE[b[o] | (b[o + 1] << 8)];

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

type BlockFn = (b: Uint8Array, o: number, y: Float32Array, p: number) => void;
const BLOCK_FNS: ReadonlyMap<number, BlockFn> = new Map<number, BlockFn>([
  [GGML.Q4_0, deqQ4_0], [GGML.Q4_1, deqQ4_1], [GGML.Q5_0, deqQ5_0], [GGML.Q5_1, deqQ5_1], [GGML.Q8_0, deqQ8_0],
  [GGML.Q2_K, deqQ2_K], [GGML.Q3_K, deqQ3_K], [GGML.Q4_K, deqQ4_K], [GGML.Q5_K, deqQ5_K], [GGML.Q6_K, deqQ6_K],
]);

/** ggml type ids this module can turn into f32. */
export const DEQUANTIZABLE: ReadonlySet<number> = new Set([GGML.F32, GGML.F16, GGML.BF16, ...BLOCK_FNS.keys()]);

/** Dequantizes `nelements` values of ggml type `type` from raw little-endian bytes. */
export function dequantize(type: number, bytes: Uint8Array, nelements: number): Float32Array {
  const t = GGML_TYPES.get(type);
  if (!t || !DEQUANTIZABLE.has(type)) {
    throw new XverseError("unsupported", `ggml type ${t?.name ?? type} cannot be dequantized here (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K); re-quantize the model to one of these`);
  }
  if (nelements % t.blockSize !== 0 || bytes.length < (nelements / t.blockSize) * t.typeSize) {
    throw new XverseError("bad_gguf", `${t.name} data of ${bytes.length} bytes cannot hold ${nelements} elements`);
  }
  const y = new Float32Array(nelements);
  if (type === GGML.F32) {
    // Copy through a fresh aligned buffer: `bytes` may start at an odd offset of a larger Buffer.
    new Uint8Array(y.buffer).set(bytes.subarray(0, nelements * 4));
    return y;
  }
  if (type === GGML.F16) {
    for (let i = 0; i < nelements; i++) y[i] = F16_TABLE[bytes[2 * i] | (bytes[2 * i + 1] << 8)];
    return y;
  }
  if (type === GGML.BF16) {
    // bf16 is the top half of an f32: shift the bits into place
    const u = new Uint32Array(y.buffer);
    for (let i = 0; i < nelements; i++) u[i] = (bytes[2 * i] << 16) | (bytes[2 * i + 1] << 24);
    return y;
  }
  const fn = BLOCK_FNS.get(type)!;
  const nb = nelements / t.blockSize;
  for (let i = 0; i < nb; i++) fn(bytes, i * t.typeSize, y, i * t.blockSize);
  return y;
}

// --- quantizers (ggml's reference quantize_row_q8_0_ref / quantize_row_q4_0_ref) ---

/** C roundf: halves away from zero. */
const roundf = (x: number): number => (x < 0 ? -Math.round(-x) : Math.round(x));

/**
 * f32 → Q8_0 blocks. Per 32 values: d = max|x| / 127 (stored as f16), q = roundf(x / d) computed with the f32
 * inverse of the unrounded d, as ggml does. x.length must be a multiple of 32.
 */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  if (x.length % 32 !== 0) throw new Error(`quantizeQ8_0: length ${x.length} is not a multiple of 32`);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  for (let i = 0; i < nb; i++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[i * 32 + j]));
    const d = fr(amax / 127);
    const id = d ? fr(1 / d) : 0;
    const hd = f32ToF16(d);
    out[i * 34] = hd & 255;
    out[i * 34 + 1] = hd >> 8;
    for (let j = 0; j < 32; j++) out[i * 34 + 2 + j] = roundf(fr(x[i * 32 + j] * id)) & 255;
  }
  return out;
}

/**
 * f32 → Q4_0 blocks. Per 32 values: m = the value of largest magnitude (sign kept), d = m / −8 (f16),
 * q = min(15, trunc(x/d + 8.5)); element j in the low nibble of byte j, element j+16 in the high nibble.
 */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  if (x.length % 32 !== 0) throw new Error(`quantizeQ4_0: length ${x.length} is not a multiple of 32`);
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  for (let i = 0; i < nb; i++) {
    let amax = 0, max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[i * 32 + j];
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
    }
    const d = fr(max / -8);
    const id = d ? fr(1 / d) : 0;
    const hd = f32ToF16(d);
    out[i * 18] = hd & 255;
    out[i * 18 + 1] = hd >> 8;
    for (let j = 0; j < 16; j++) {
      const x0 = Math.min(15, Math.trunc(fr(fr(x[i * 32 + j] * id) + 8.5)));
      const x1 = Math.min(15, Math.trunc(fr(fr(x[i * 32 + 16 + j] * id) + 8.5)));
      out[i * 18 + 2 + j] = x0 | (x1 << 4);
    }
  }
  return out;
}
