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
 */

import type { BlockFormat } from "../../ts/blocks.js";
import { matmulHeader } from "./shaders.js";

/** Rows and tokens of one prefill tile. */
export const RT = 64;
export const NT = 32;

export function prefillWgsl(format: BlockFormat): string {
  return /* wgsl */ `// ${format} prefill matmul (src/backend/webgpu/blocks/tiled.ts)
${matmulHeader(format)}
const RT: u32 = ${RT}u;
const NT: u32 = ${NT}u;
var<workgroup> ws: array<f32, ${RT * 32}>; // (32 columns, RT rows): ws[k * RT + row]
var<workgroup> xs: array<f32, ${NT * 32}>; // (32 columns, NT tokens): xs[k * NT + token]

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
      ws[(4u * k) * RT + li] = v[k].x;
      ws[(4u * k + 1u) * RT + li] = v[k].y;
      ws[(4u * k + 2u) * RT + li] = v[k].z;
      ws[(4u * k + 3u) * RT + li] = v[k].w;
    }
    for (var q = 0u; q < 4u; q++) {
      var xv = vec4<f32>(0.0);
      if (t0 + xt < p.T) { xv = x[(t0 + xt) * c4 + u * 8u + xh * 4u + q]; }
      let k = xh * 16u + 4u * q;
      xs[k * NT + xt] = xv.x;
      xs[(k + 1u) * NT + xt] = xv.y;
      xs[(k + 2u) * NT + xt] = xv.z;
      xs[(k + 3u) * NT + xt] = xv.w;
    }
    workgroupBarrier();
    // this unit's 32 products summed apart, then added: the error grows with units, not columns
    var s = array<vec4<f32>, 8>();
    for (var k = 0u; k < 32u; k++) {
      let wv = vec4<f32>(ws[k * RT + rg], ws[k * RT + rg + 16u], ws[k * RT + rg + 32u], ws[k * RT + rg + 48u]);
      let xa = vec4<f32>(xs[k * NT + tg], xs[k * NT + tg + 4u], xs[k * NT + tg + 8u], xs[k * NT + tg + 12u]);
      let xb = vec4<f32>(xs[k * NT + tg + 16u], xs[k * NT + tg + 20u], xs[k * NT + tg + 24u], xs[k * NT + tg + 28u]);
      s[0] += wv.x * xa;
      s[1] += wv.x * xb;
      s[2] += wv.y * xa;
      s[3] += wv.y * xb;
      s[4] += wv.z * xa;
      s[5] += wv.z * xb;
      s[6] += wv.w * xa;
      s[7] += wv.w * xb;
    }
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

// the 8 output vectors, with constant indices only: a dynamically indexed acc would live in memory, not registers
const STORES = [0, 1, 2, 3].map((i) => `  store4(r0 + rg + ${16 * i}u, t0 + tg, acc[${2 * i}]);
  store4(r0 + rg + ${16 * i}u, t0 + tg + 16u, acc[${2 * i + 1}]);`).join("\n");
