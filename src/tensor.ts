/**
 * Host tensors: a dtype, a shape and a typed array in row-major (C-contiguous) order.
 * bf16 and f16 are kept as raw 16-bit patterns in a Uint16Array; the model converts them when it needs to.
 */
export type DType = "f32" | "f64" | "f16" | "bf16" | "i8" | "u8" | "i16" | "i32" | "i64" | "bool";

export type TensorData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Int32Array
  | BigInt64Array;

export interface Tensor {
  dtype: DType;
  shape: number[];
  data: TensorData;
}

export const DTYPE_BYTES: Record<DType, number> = {
  f32: 4, f64: 8, f16: 2, bf16: 2, i8: 1, u8: 1, i16: 2, i32: 4, i64: 8, bool: 1,
};

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

// --- 16-bit float conversions (bit-exact, round-to-nearest-even when narrowing) ---

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function bf16ToF32(h: number): number {
  u32buf[0] = h << 16;
  return f32buf[0];
}

export function f32ToBf16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) return (u >>> 16) | 0x40; // keep NaN a NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function f32ToF16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (r & 1))) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1))) {
    r++;
    if (r === 0x400) { r = 0; e++; if (e >= 31) return sign | 0x7c00; }
  }
  return sign | (e << 10) | r;
}

let f16Lut: Float32Array | null = null;

/** All 65,536 half-precision values as f32 (256 KiB, built on first use): f16 decoding is one lookup. */
export function f16Table(): Float32Array {
  if (!f16Lut) {
    f16Lut = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Lut[h] = f16ToF32(h);
  }
  return f16Lut;
}

/** Any float tensor (f32, f64, f16, bf16) as a fresh or shared Float32Array. */
export function toFloat32(t: Tensor): Float32Array {
  switch (t.dtype) {
    case "f32": return t.data as Float32Array;
    case "f64": return Float32Array.from(t.data as Float64Array);
    case "bf16": {
      const src = t.data as Uint16Array;
      const out = new Float32Array(src.length);
      const o32 = new Uint32Array(out.buffer);
      for (let i = 0; i < src.length; i++) o32[i] = src[i] << 16;
      return out;
    }
    case "f16": {
      const src = t.data as Uint16Array;
      const out = new Float32Array(src.length);
      const tab = f16Table();
      for (let i = 0; i < src.length; i++) out[i] = tab[src[i]];
      return out;
    }
    default:
      throw new Error(`toFloat32: dtype ${t.dtype} is not a float type`);
  }
}
