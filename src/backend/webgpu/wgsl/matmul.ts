/**
 * Dense matmul WGSL for the float and int formats: y (T, rows) = x (T, cols) · dequant(W)ᵀ.
 * One workgroup of 64 threads per (weight row, 8 tokens): threads stride over the row's columns, decode each
 * weight once and multiply it into up to 8 token accumulators; a reduction (subgroupAdd when the device has
 * subgroups, else shared memory) gives the 8 outputs. Weights are read from u32 words (f16 / bf16 / int8 / int4
 * unpacked with shifts), so no shader-f16 is needed; arithmetic is f32 (no activation quantization).
 */
import type { WeightFormat } from "../../backend.js";
import { MATMUL_PARAMS_WGSL, WGSL_BYTES, WGSL_F16 } from "../registry.js";

export const MATMUL_TOKENS = 8;
export type DenseFormat = "f32" | "f16" | "bf16" | "q8_row" | "q4_row" | "q4_group" | "q8_group";
export const DENSE_FORMATS: readonly WeightFormat[] = ["f32", "f16", "bf16", "q8_row", "q4_row", "q4_group", "q8_group"];

/** wval(e, gr, k): W value at element e of this part (row-major), global row gr, stored column k. */
function decoder(f: DenseFormat, mins: boolean): string {
  const grp = "(gr * p.cols + k) / p.groupSize";
  const withMin = (s: string, idx: string) => (mins ? `${s} * scales[${idx}] + mins[${idx}]` : `${s} * scales[${idx}]`);
  switch (f) {
    case "f32": return "return bitcast<f32>(w[e]);";
    case "f16": return "return f16_to_f32((w[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu);";
    case "bf16": return "return bitcast<f32>(((w[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu) << 16u);";
    case "q8_row": return "return f32(i32(wbyte(e) << 24u) >> 24u) * scales[gr];";
    case "q8_group": return `let q = f32(i32(wbyte(e) << 24u) >> 24u); return ${withMin("q", grp)};`;
    case "q4_row": return "let b = wbyte(e >> 1u) >> ((e & 1u) * 4u); let q = f32(i32((b & 15u) ^ 8u) - 8); return q * scales[gr];";
    case "q4_group": return `let b = wbyte(e >> 1u) >> ((e & 1u) * 4u); let q = f32(i32((b & 15u) ^ 8u) - 8); return ${withMin("q", grp)};`;
  }
}

export interface DenseVariant {
  format: DenseFormat;
  mins: boolean;
  perm: boolean;
  subgroups: boolean;
  /**
   * "workgroup": 64 threads share one row and reduce (GPUs: coalesced reads of the row); "thread": one thread
   * per (row, 8 tokens), no barriers (CPU drivers such as SwiftShader, where a barrier costs ~30 dispatches).
   */
  style: "workgroup" | "thread";
}

/** Bindings: 0 params, 1 x, 2 w, 3 y, then scales (int formats), mins, perm when present. */
export function denseMatmulWgsl(v: DenseVariant): string {
  const scaled = v.format.startsWith("q");
  let b = 4;
  const extra = [
    scaled ? `@group(0) @binding(${b++}) var<storage, read> scales: array<f32>;` : "",
    v.mins ? `@group(0) @binding(${b++}) var<storage, read> mins: array<f32>;` : "",
    v.perm ? `@group(0) @binding(${b++}) var<storage, read> perm: array<u32>;` : "",
  ].join("\n");
  const xcol = v.perm ? "perm[k]" : "k";
  const reduce = v.subgroups
    ? `
  for (var j = 0u; j < TT; j++) {
    let s = subgroupAdd(acc[j]);
    red[j * WG + lid] = select(0.0, s, sgi == 0u);
  }
  workgroupBarrier();
  if (lid == 0u) {
    for (var j = 0u; j < nt; j++) {
      var s = 0.0;
      // one nonzero entry per subgroup, wherever its first lane sits
      for (var i = 0u; i < WG; i++) { s += red[j * WG + i]; }
      y[(t0 + j) * p.yStride + p.rowBase + r] = s;
    }
  }`
    : `
  for (var j = 0u; j < TT; j++) { red[j * WG + lid] = acc[j]; }
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) { for (var j = 0u; j < TT; j++) { red[j * WG + lid] += red[j * WG + lid + s]; } }
  }
  workgroupBarrier();
  if (lid == 0u) { for (var j = 0u; j < nt; j++) { y[(t0 + j) * p.yStride + p.rowBase + r] = red[j * WG]; } }`;
  if (v.style === "thread") {
    return `${MATMUL_PARAMS_WGSL}
const TT: u32 = ${MATMUL_TOKENS}u;
@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${extra}
${WGSL_BYTES}
${WGSL_F16}
fn wval(e: u32, gr: u32, k: u32) -> f32 { ${decoder(v.format, v.mins)} }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * 32768u) * 64u + lid;
  let chunks = (p.T + TT - 1u) / TT;
  if (idx >= p.rows * chunks) { return; }
  let r = idx % p.rows;
  let t0 = (idx / p.rows) * TT;
  let nt = min(TT, p.T - t0);
  let gr = p.rowBase + r;
  var acc: array<f32, ${MATMUL_TOKENS}>;
  for (var k = 0u; k < p.cols; k++) {
    let wv = wval(r * p.cols + k, gr, k);
    let xc = ${xcol};
    for (var j = 0u; j < nt; j++) { acc[j] += wv * x[(t0 + j) * p.cols + xc]; }
  }
  for (var j = 0u; j < nt; j++) { y[(t0 + j) * p.yStride + gr] = acc[j]; }
}
`;
  }
  return `${v.subgroups ? "enable subgroups;" : ""}
${MATMUL_PARAMS_WGSL}
const WG: u32 = 64u;
const TT: u32 = ${MATMUL_TOKENS}u;
@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${extra}
var<workgroup> red: array<f32, ${64 * MATMUL_TOKENS}>;
${WGSL_BYTES}
${WGSL_F16}
fn wval(e: u32, gr: u32, k: u32) -> f32 { ${decoder(v.format, v.mins)} }

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32${v.subgroups ? ", @builtin(subgroup_invocation_id) sgi: u32" : ""}) {
  let r = wid.x + wid.y * 32768u;
  if (r >= p.rows) { return; }
  let t0 = wid.z * TT;
  let nt = min(TT, p.T - t0);
  let gr = p.rowBase + r;
  var acc: array<f32, ${MATMUL_TOKENS}>;
  for (var k = lid; k < p.cols; k += WG) {
    let wv = wval(r * p.cols + k, gr, k);
    let xc = ${xcol};
    for (var j = 0u; j < nt; j++) { acc[j] += wv * x[(t0 + j) * p.cols + xc]; }
  }
${reduce}
}
`;
}
