/**
 * The two WGSL modules every GGUF block format gets, built around its `decode_unit` (wgsl-legacy.ts,
 * wgsl-kquants.ts), with the bindings of ../registry.ts:
 *
 * matmul: y (T, yStride)[:, rowBase + r] = x (T, cols) · dequant(W part)ᵀ. One workgroup of WG threads per
 *   weight row and per tile of TT tokens; thread i decodes the row's 32-value units i, i + WG, … (adjacent
 *   threads read adjacent bytes: coalesced at T = 1), multiplies each unit with the tile's x (f32, never
 *   quantized) and keeps TT partial sums; a shared-memory tree (or subgroupAdd) then adds them per token.
 *   Grid: x + nx·y = row (nx = the dispatch's x size: 32768 from splitGrid when y > 1), z = token tile.
 *   Variants: subgroupAdd reduction; "thread" style (below) for CPU drivers; tiled.ts for prefill on GPUs.
 * embed: out[outOffset + c] = W[row, c]: one thread per 32-value unit.
 */
import type { BlockFormat } from "../../ts/blocks.js";
import { BLOCK_GEOMETRY } from "../../ts/blocks.js";
import { EMBED_PARAMS_WGSL, MATMUL_PARAMS_WGSL, WGSL_BYTES, WGSL_F16 } from "../registry.js";
import { LEGACY_DECODERS, WGSL_DECODE_HELPERS } from "./wgsl-legacy.js";
import { KQUANT_DECODERS } from "./wgsl-kquants.js";

/** Threads per workgroup (a power of two: the tree reduction halves it). */
export const WG = 64;
/** Tokens per workgroup: each thread keeps TT partial sums; T > TT dispatches more tiles along z. */
export const TT = 8;

/** decode_unit of a format with two 16-bit values per word: lo(word) / hi(word) give the two values as f32. */
function halvesUnit(lo: (word: string) => string, hi: (word: string) => string): string {
  return /* wgsl */ `
fn decode_unit(o: u32, s: u32) -> array<vec4<f32>, 8> {
  var r: array<vec4<f32>, 8>;
  let i = o >> 2u;
  for (var k = 0u; k < 8u; k++) {
    let a = w[i + 2u * k];
    let b = w[i + 2u * k + 1u];
    r[k] = vec4<f32>(${lo("a")}, ${hi("a")}, ${lo("b")}, ${hi("b")});
  }
  return r;
}
`;
}

/**
 * The dense float formats as 32-value "blocks" of their stored values (row-major, rows of whole units): so the
 * tiled prefill (tiled.ts) runs f32 / f16 / bf16 weights too (kernels.ts picks it when cols % 32 = 0).
 * Words 4-aligned: a row starts at row · cols · (2 or 4) bytes, a multiple of 64.
 */
const DENSE_UNITS = {
  f32: { bytes: 128, decoder: /* wgsl */ `
fn decode_unit(o: u32, s: u32) -> array<vec4<f32>, 8> {
  var r: array<vec4<f32>, 8>;
  let i = o >> 2u;
  for (var k = 0u; k < 8u; k++) { r[k] = bitcast<vec4<f32>>(vec4<u32>(w[i + 4u * k], w[i + 4u * k + 1u], w[i + 4u * k + 2u], w[i + 4u * k + 3u])); }
  return r;
}
` },
  // two 16-bit values per word: f16 through f16_to_f32, bf16 as the high half of an f32
  f16: { bytes: 64, decoder: halvesUnit((v) => `f16_to_f32(${v} & 0xffffu)`, (v) => `f16_to_f32(${v} >> 16u)`) },
  bf16: { bytes: 64, decoder: halvesUnit((v) => `bitcast<f32>(${v} << 16u)`, (v) => `bitcast<f32>(${v} & 0xffff0000u)`) },
} as const;

/** What the tiled prefill runs: every GGUF block format, and the dense float formats (DENSE_UNITS). */
export type TiledFormat = BlockFormat | keyof typeof DENSE_UNITS;
export const DENSE_TILED: readonly string[] = Object.keys(DENSE_UNITS);

const DECODERS: Record<BlockFormat, string> = { ...LEGACY_DECODERS, ...KQUANT_DECODERS };

/** The byte helpers and the format's decoder (decode_unit), for every module of the format. */
export function common(format: TiledFormat): string {
  const g = format in DENSE_UNITS
    ? { values: 32, bytes: DENSE_UNITS[format as keyof typeof DENSE_UNITS].bytes, decoder: DENSE_UNITS[format as keyof typeof DENSE_UNITS].decoder }
    : { ...BLOCK_GEOMETRY[format as BlockFormat], decoder: DECODERS[format as BlockFormat] };
  return `${WGSL_BYTES}${WGSL_F16}${WGSL_DECODE_HELPERS}
const UPB: u32 = ${g.values / 32}u; // 32-value units per block
const BB: u32 = ${g.bytes}u;        // bytes per block
${g.decoder}`;
}

/** What every matmul module of a format starts with: the registry's matmul bindings, then common(format). */
export function matmulHeader(format: TiledFormat): string {
  return `${MATMUL_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> p: MatmulParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;  // (T, cols / 4)
@group(0) @binding(2) var<storage, read> w: array<u32>;        // this part's rows of blocks
@group(0) @binding(3) var<storage, read_write> y: array<f32>;  // (T, yStride)
${common(format)}`;
}

// acc[t] += unit u of row r (decoded into v) · tokens t0 … t0 + nt − 1's 32 columns of that unit.
const ACCUMULATE_UNIT = /* wgsl */ `    let xb = t0 * c4 + u * 8u;
    // a constant trip count lets compilers unroll, so acc[t] stays in registers (a dynamic index spills it)
    for (var t = 0u; t < TT; t++) {
      if (t >= nt) { break; }
      let xo = xb + t * c4;
      acc[t] += ((dot(v[0], x[xo]) + dot(v[1], x[xo + 1u])) + (dot(v[2], x[xo + 2u]) + dot(v[3], x[xo + 3u])))
        + ((dot(v[4], x[xo + 4u]) + dot(v[5], x[xo + 5u])) + (dot(v[6], x[xo + 6u]) + dot(v[7], x[xo + 7u])));
    }`;

// The reduction of the WG partial sums per token: a shared-memory tree (any device), or with `subgroups` one
// subgroupAdd per token and a sum of the subgroup leaders' values. The latter assumes, as every Vulkan / D3D12 /
// Metal driver does for a 1-D workgroup, that subgroup k holds invocations k·sgs … k·sgs + sgs − 1.
const TREE = /* wgsl */ `
  for (var t = 0u; t < TT; t++) { red[t * WG + li] = acc[t]; }
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (li < s) {
      for (var t = 0u; t < nt; t++) { red[t * WG + li] += red[t * WG + li + s]; }
    }
    workgroupBarrier();
  }
  if (li < nt) { y[(t0 + li) * p.yStride + p.rowBase + r] = red[li * WG]; }`;
const SUBGROUP = /* wgsl */ `
  for (var t = 0u; t < TT; t++) {
    let s = subgroupAdd(acc[t]);
    if (sgi == 0u) { red[t * WG + li] = s; }
  }
  workgroupBarrier();
  if (li < nt) {
    var s = 0.0;
    for (var i = 0u; i < WG; i += sgs) { s += red[li * WG + i]; }
    y[(t0 + li) * p.yStride + p.rowBase + r] = s;
  }`;

export interface MatmulVariant {
  /** Reduce with subgroupAdd (needs the device feature "subgroups"); default false: shared memory only. */
  subgroups?: boolean;
  /**
   * "workgroup" (default: WG threads share a row, GPUs) or "thread" (one thread per row and TT tokens, no
   * barriers or shared memory: CPU drivers such as SwiftShader, where a barrier is very slow).
   */
  style?: "workgroup" | "thread";
}

export function matmulWgsl(format: BlockFormat, v: MatmulVariant = {}): string {
  if (v.style === "thread") return threadWgsl(format);
  const sg = !!v.subgroups;
  return /* wgsl */ `${sg ? "enable subgroups;\n" : ""}// ${format} matmul (src/backend/webgpu/blocks/shaders.ts)
${matmulHeader(format)}
const WG: u32 = ${WG}u;
const TT: u32 = ${TT}u;
var<workgroup> red: array<f32, ${WG * TT}>; // (TT, WG) partial sums

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32${sg ? ", @builtin(subgroup_invocation_id) sgi: u32, @builtin(subgroup_size) sgs: u32" : ""}) {
  let r = wid.x + wid.y * nwg.x; // splitGrid: nwg.x = 32768 whenever nwg.y > 1
  if (r >= p.rows) { return; } // uniform: the whole workgroup leaves
  let t0 = wid.z * TT;
  let nt = min(TT, p.T - t0);
  let units = p.cols / 32u;
  let c4 = p.cols / 4u;
  let rowByte = r * (units / UPB) * BB;
  var acc: array<f32, ${TT}>;
  for (var u = li; u < units; u += WG) {
    let v = decode_unit(rowByte + (u / UPB) * BB, u % UPB);
${ACCUMULATE_UNIT}
  }
  ${sg ? SUBGROUP : TREE}
}
`;
}

/**
 * The barrier-free variant: invocation i (of ⌈rows·tiles / 64⌉ workgroups of 64, grid x + nx·y) computes row
 * i mod rows for tokens TT·⌊i / rows⌋ … + TT − 1, walking all of the row's units itself.
 */
function threadWgsl(format: BlockFormat): string {
  return /* wgsl */ `// ${format} matmul, thread style (src/backend/webgpu/blocks/shaders.ts)
${matmulHeader(format)}
const TT: u32 = ${TT}u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wid.x + wid.y * nwg.x) * 64u + li;
  let r = i % p.rows;
  let t0 = (i / p.rows) * TT;
  if (t0 >= p.T) { return; }
  let nt = min(TT, p.T - t0);
  let units = p.cols / 32u;
  let c4 = p.cols / 4u;
  let rowByte = r * (units / UPB) * BB;
  var acc: array<f32, ${TT}>;
  for (var u = 0u; u < units; u++) {
    let v = decode_unit(rowByte + (u / UPB) * BB, u % UPB);
${ACCUMULATE_UNIT}
  }
  for (var t = 0u; t < TT; t++) {
    if (t < nt) { y[(t0 + t) * p.yStride + p.rowBase + r] = acc[t]; }
  }
}
`;
}

export function embedWgsl(format: BlockFormat): string {
  return /* wgsl */ `// ${format} embed row (src/backend/webgpu/blocks/shaders.ts)
${EMBED_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> e: EmbedParams;
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${common(format)}

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  let u = g.x;
  let units = e.cols / 32u;
  if (u >= units) { return; }
  var v = decode_unit(e.row * (units / UPB) * BB + (u / UPB) * BB, u % UPB);
  let ob = e.outOffset + u * 32u;
  for (var k = 0u; k < 8u; k++) {
    out[ob + 4u * k] = v[k].x;
    out[ob + 4u * k + 1u] = v[k].y;
    out[ob + 4u * k + 2u] = v[k].z;
    out[ob + 4u * k + 3u] = v[k].w;
  }
}
`;
}
