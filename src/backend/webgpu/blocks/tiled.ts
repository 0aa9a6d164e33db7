/**
 * The prefill kernel of the block matmul (T > TT tokens, GPUs): its own module, so the decode pipeline stays
 * small (SwiftShader takes seconds to compile this one) and it is compiled only when a prefill needs it.
 *
 * One workgroup of 64 threads computes a tile of RT = 64 weight rows × NT = 32 tokens. Per 32-column unit of
 * the rows: thread i decodes row i's unit into shared `ws` (so each weight unit is decoded ⌈T / 32⌉ times, not
 * ⌈T / 8⌉), the threads copy the x tile (32 tokens × 32 columns) into `xs`, and each thread accumulates a
 * 4-row × 8-token block of outputs from shared memory (rows rg + 16i, tokens tg + 4j: consecutive threads
 * read consecutive words, so no bank conflicts), per unit, then added. Grid: x + nx·y = row tile, z = token
 * tile of 32.
 *
 * With { f16 } (a device with shader-f16, WebGpuOptions.f16 not false): the tiles are f16 in shared memory
 * (half the bytes) and the products f16, 4 columns at a time summed in f16, then added to f32 sums — the f16
 * multiply rate on GPUs, with f16 rounding only per 4 products. Weights decode to f32 first (d·q, then one
 * rounding to f16); x is clamped to ±65504 (f16's largest) as it is staged. Error: about 2^-11 relative per
 * product, ≈ 1e-3 normalized on random data (test/webgpu/f16.test.ts bounds it by 3e-3).
 */

import { matmulHeader, type TiledFormat } from "./shaders.js";

/** Rows and tokens of one prefill tile. */
export const RT = 64;
export const NT = 32;

export function prefillWgsl(format: TiledFormat, opts: { f16?: boolean } = {}): string {
  const f16 = opts.f16 ?? false;
  const E = f16 ? "f16" : "f32"; // the tiles' element type
  return /* wgsl */ `${f16 ? "enable f16;\n" : ""}// ${format} prefill matmul (src/backend/webgpu/blocks/tiled.ts${f16 ? ", f16 products" : ""})
${matmulHeader(format)}
const RT: u32 = ${RT}u;
const NT: u32 = ${NT}u;
var<workgroup> ws: array<${E}, ${RT * 32}>; // (32 columns, RT rows): ws[k * RT + row]
var<workgroup> xs: array<${E}, ${NT * 32}>; // (32 columns, NT tokens): xs[k * NT + token]

// y for row "row", tokens t, t + 4, t + 8, t + 12 (the components of a), where in range
fn store4(row: u32, t: u32, a: vec4<f32>) {
  if (row >= p.rows) { return; }
  let o = p.rowBase + row;
  if (t < p.T) { y[t * p.yStride + o] = a.x; }
  if (t + 4u < p.T) { y[(t + 4u) * p.yStride + o] = a.y; }
  if (t + 8u < p.T) { y[(t + 8u) * p.yStride + o] = a.z; }
  if (t + 12u < p.T) { y[(t + 12u) * p.yStride + o] = a.w; }
}

fn matmul_tiled(rt: u32, tz: u32, li: u32) {
  let units = p.cols / 32u;
  let c4 = p.cols / 4u;
  let r0 = rt * RT;
  let t0 = tz * NT;
  let myRow = r0 + li;
  let rowByte = myRow * (units / UPB) * BB;
  // x tile loader: thread li copies token li / 2, columns 16·(li % 2) … + 15
  let xt = li >> 1u;
  let xh = li & 1u;
  let rg = li & 15u; // output rows rg + 16i
  let tg = li >> 4u; // output tokens tg + 4j
  // acc[2i] = tokens tg + 4·(0 … 3), acc[2i + 1] = tokens tg + 4·(4 … 7), of row rg + 16i
  var acc: array<vec4<f32>, 8>;
  for (var u = 0u; u < units; u++) {
    var v = array<vec4<f32>, 8>(); // explicit: SwiftShader does not re-zero a loop-local var per iteration
    if (myRow < p.rows) { v = decode_unit(rowByte + (u / UPB) * BB, u % UPB); } // else zeros (rows past the part)
    for (var k = 0u; k < 8u; k++) {
      let vk = ${f16 ? "vec4<f16>(v[k])" : "v[k]"};
      ws[(4u * k) * RT + li] = vk.x;
      ws[(4u * k + 1u) * RT + li] = vk.y;
      ws[(4u * k + 2u) * RT + li] = vk.z;
      ws[(4u * k + 3u) * RT + li] = vk.w;
    }
    for (var q = 0u; q < 4u; q++) {
      var xv = vec4<f32>(0.0);
      if (t0 + xt < p.T) { xv = x[(t0 + xt) * c4 + u * 8u + xh * 4u + q]; }
      let xe = ${f16 ? "vec4<f16>(clamp(xv, vec4<f32>(-65504.0), vec4<f32>(65504.0)))" : "xv"};
      let k = xh * 16u + 4u * q;
      xs[k * NT + xt] = xe.x;
      xs[(k + 1u) * NT + xt] = xe.y;
      xs[(k + 2u) * NT + xt] = xe.z;
      xs[(k + 3u) * NT + xt] = xe.w;
    }
    workgroupBarrier();
    // this unit's 32 products summed apart, then added: the error grows with units, not columns
    var s = array<vec4<f32>, 8>();
${f16 ? F16_PRODUCTS : F32_PRODUCTS}
    for (var i = 0u; i < 8u; i++) { acc[i] += s[i]; }
    workgroupBarrier();
  }
${STORES}
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let rt = wid.x + wid.y * nwg.x;
  if (rt * RT >= p.rows) { return; } // uniform: the whole workgroup leaves
  matmul_tiled(rt, wid.z, li);
}
`;
}

// One column k of the tiles: row values wv (rows rg + 16i), token values xa / xb (tokens tg + 4j, tg + 16 + 4j),
// multiplied into the 8 sums named h (vectors of the given type).
const product = (type: string, h: string) => /* wgsl */ `      let wv = vec4<${type}>(ws[k * RT + rg], ws[k * RT + rg + 16u], ws[k * RT + rg + 32u], ws[k * RT + rg + 48u]);
      let xa = vec4<${type}>(xs[k * NT + tg], xs[k * NT + tg + 4u], xs[k * NT + tg + 8u], xs[k * NT + tg + 12u]);
      let xb = vec4<${type}>(xs[k * NT + tg + 16u], xs[k * NT + tg + 20u], xs[k * NT + tg + 24u], xs[k * NT + tg + 28u]);
      ${h}[0] += wv.x * xa;
      ${h}[1] += wv.x * xb;
      ${h}[2] += wv.y * xa;
      ${h}[3] += wv.y * xb;
      ${h}[4] += wv.z * xa;
      ${h}[5] += wv.z * xb;
      ${h}[6] += wv.w * xa;
      ${h}[7] += wv.w * xb;`;
const F32_PRODUCTS = `    for (var k = 0u; k < 32u; k++) {
${product("f32", "s")}
    }`;
// f16: 4 columns of products summed in f16 (h), then added to the f32 sums s
const F16_PRODUCTS = `    for (var k4 = 0u; k4 < 32u; k4 += 4u) {
      var h = array<vec4<f16>, 8>();
      for (var k = k4; k < k4 + 4u; k++) {
${product("f16", "h")}
      }
      for (var i = 0u; i < 8u; i++) { s[i] += vec4<f32>(h[i]); }
    }`;

// the 8 output vectors, with constant indices only: a dynamically indexed acc would live in memory, not registers
const STORES = [0, 1, 2, 3].map((i) => `  store4(r0 + rg + ${16 * i}u, t0 + tg, acc[${2 * i}]);
  store4(r0 + rg + ${16 * i}u, t0 + tg + 16u, acc[${2 * i + 1}]);`).join("\n");
