/**
 * The contract between the WebGPU core and per-format matmul kernels (the GGUF block families in blocks/).
 * A format kernel is a WGSL module with these bindings (group 0) and one entry point:
 *
 *   @group(0) @binding(0) var<uniform> p: MatmulParams;            // MATMUL_PARAMS_WGSL below
 *   @group(0) @binding(1) var<storage, read> x: array<f32>;        // (p.T, p.cols) activations
 *   @group(0) @binding(2) var<storage, read> w: array<u32>;        // p.rows rows of the weight, raw bytes as words
 *   @group(0) @binding(3) var<storage, read_write> y: array<f32>;  // y[t·p.yStride + p.rowBase + r]
 *
 * and computes y[t·yStride + rowBase + r] = Σ_k x[t·cols + k] · W[rowBase + r, k] for r < p.rows, t < p.T.
 * A weight larger than one storage binding is split in row ranges ("parts"); the core dispatches the kernel
 * once per part, with `w` holding only that part's rows (byte 0 of `w` = first byte of row p.rowBase, padded
 * with zeros to a multiple of 4) and p.rows = the part's row count. Rows are not 4-byte aligned in general
 * (q4_0: 18 bytes per block), so kernels read bytes out of words (WGSL_BYTES below).
 *
 * The optional embed kernel decodes one row to f32 (a quantized token table):
 *   @group(0) @binding(0) var<uniform> e: EmbedParams;             // { row (in this part), cols, outOffset, _ }
 *   @group(0) @binding(1) var<storage, read> w: array<u32>;        // the part holding the row
 *   @group(0) @binding(2) var<storage, read_write> out: array<f32>;// out[outOffset + c] for c < cols
 */
import type { WeightFormat } from "../backend.js";

/** The uniform every matmul kernel receives (32 bytes). groupSize / flags are for the dense int formats. */
export const MATMUL_PARAMS_WGSL = /* wgsl */ `
struct MatmulParams {
  rows: u32,      // rows of W in this dispatch (this part)
  cols: u32,      // columns of W = values per x row
  T: u32,         // tokens (rows of x)
  rowBase: u32,   // global index of this part's first row
  yStride: u32,   // values per y row (all rows of W)
  groupSize: u32, // q4_group / q8_group: columns per scale; else 0
  flags: u32,     // bit 0: mins present, bit 1: perm present
  pad: u32,
}
`;

export const EMBED_PARAMS_WGSL = /* wgsl */ `
struct EmbedParams {
  row: u32,       // row inside this part
  cols: u32,
  outOffset: u32,
  pad: u32,
}
`;

/**
 * WGSL helpers any kernel may paste in (they read the binding named `w`): byte i of the part, a little-endian
 * u16 at byte i (any alignment), and an exact f16 → f32 (subnormals included; no shader-f16 needed).
 */
export const WGSL_BYTES = /* wgsl */ `
fn wbyte(i: u32) -> u32 { return (w[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu; }
fn wu16(i: u32) -> u32 {
  let s = (i & 3u) * 8u;
  if (s <= 16u) { return (w[i >> 2u] >> s) & 0xffffu; }
  return (w[i >> 2u] >> 24u) | ((w[(i >> 2u) + 1u] & 0xffu) << 8u);
}
`;

export const WGSL_F16 = /* wgsl */ `
fn f16_to_f32(h: u32) -> f32 {
  let s = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0u) {
    // zero or subnormal: m · 2^-24, exact in f32
    let v = f32(m) * 5.9604644775390625e-8;
    return select(v, -v, s != 0u);
  }
  if (e == 31u) { return bitcast<f32>(s | 0x7f800000u | (m << 13u)); }
  return bitcast<f32>(s | ((e + 112u) << 23u) | (m << 13u));
}
`;

/**
 * The same function on a device with `shader-f16`: the hardware's f16 → f32 conversion (exact: every f16 is an
 * f32; Dawn on Mesa's lavapipe keeps subnormals, as GPUs do). The low half of h is component x of the bitcast.
 */
export const WGSL_F16_NATIVE = /* wgsl */ `
fn f16_to_f32(h: u32) -> f32 { return f32(bitcast<vec2<f16>>(h).x); }
`;

/**
 * A module for a device with shader-f16: WGSL_F16 swapped for WGSL_F16_NATIVE, and "enable f16;" first (enable
 * directives precede every declaration). Applied by GpuContext.pipeline to every module, so kernels paste
 * WGSL_F16 and run unchanged on devices without the feature (SwiftShader, many phones).
 */
export function withShaderF16(wgsl: string): string {
  const swapped = wgsl.includes(WGSL_F16) ? wgsl.split(WGSL_F16).join(WGSL_F16_NATIVE) : wgsl;
  if (swapped === wgsl || /^\s*enable\s+f16\s*;/m.test(wgsl)) return swapped;
  return `enable f16;\n${swapped}`;
}

/** One registered matmul (and optional embed) kernel for a weight format. */
export interface FormatKernel {
  /** The WGSL module (bindings as above). */
  wgsl: string;
  entryPoint: string;
  /** Workgroups to dispatch for one part of `rows` rows and T tokens (each ≤ 65535). */
  workgroups(rows: number, T: number): [number, number, number];
  embed?: {
    wgsl: string;
    entryPoint: string;
    workgroups(cols: number): [number, number, number];
  };
  /**
   * Optional: a kernel chosen per device and call (subgroupAdd when the device has subgroups, the barrier-free
   * "thread" style on CPU drivers, a tiled kernel for prefill). `key` names the pipeline (one per distinct WGSL).
   * Without it the core uses `wgsl` / `entryPoint` / `workgroups` for every call.
   */
  variant?(v: { subgroups: boolean; style: "workgroup" | "thread"; T: number; f16: boolean }): {
    key: string;
    wgsl: string;
    entryPoint: string;
    workgroups(rows: number, T: number): [number, number, number];
  };
}

const kernels = new Map<WeightFormat, FormatKernel>();

/** Registers (or replaces) the kernel for a format; blocks/index.ts calls it for every family it implements. */
export function registerFormatKernel(format: WeightFormat, k: FormatKernel): void {
  kernels.set(format, k);
}

export function formatKernel(format: WeightFormat): FormatKernel | undefined {
  return kernels.get(format);
}

/** Splits n rows into dispatch dimensions x · y with x ≤ 32768: kernels use wid.x + wid.y · 32768 as the index. */
export function splitGrid(n: number): [number, number] {
  return n <= 32768 ? [Math.max(1, n), 1] : [32768, Math.ceil(n / 32768)];
}
