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
import { BLOCK_DECODERS, type BlockDecoder } from "../backend/ts/blocks.js";

const fr = Math.fround;

// f16 → f32 through a 64K-entry table (whole F16 tensors).
const F16_TABLE = f16Table();

// The per-block decoders are the weight-format spec (backend/ts/blocks.ts); whole tensors reuse them.
const BLOCK_FNS: ReadonlyMap<number, BlockDecoder> = new Map<number, BlockDecoder>([
  [GGML.Q4_0, BLOCK_DECODERS.q4_0], [GGML.Q4_1, BLOCK_DECODERS.q4_1], [GGML.Q5_0, BLOCK_DECODERS.q5_0],
  [GGML.Q5_1, BLOCK_DECODERS.q5_1], [GGML.Q8_0, BLOCK_DECODERS.q8_0], [GGML.Q2_K, BLOCK_DECODERS.q2_k],
  [GGML.Q3_K, BLOCK_DECODERS.q3_k], [GGML.Q4_K, BLOCK_DECODERS.q4_k], [GGML.Q5_K, BLOCK_DECODERS.q5_k],
  [GGML.Q6_K, BLOCK_DECODERS.q6_k],
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
