/**
 * Row and elementwise kernels: RMSNorm (one workgroup per token row), rotate-half RoPE, SiLU·mul, add.
 * Elementwise kernels index i = (wid.x + wid.y · 32768) · 64 + lid so any n fits the dispatch limits.
 */
export const RMSNORM_WGSL = /* wgsl */ `
struct P { T: u32, dim: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x + wid.y * 32768u;
  if (t >= p.T) { return; }
  let o = t * p.dim;
  var ss = 0.0;
  for (var i = lid; i < p.dim; i += 64u) { let v = x[o + i]; ss += v * v; }
  red[lid] = ss;
  for (var s = 32u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lid < s) { red[lid] += red[lid + s]; }
  }
  workgroupBarrier();
  let inv = 1.0 / sqrt(red[0] / f32(p.dim) + p.eps);
  for (var i = lid; i < p.dim; i += 64u) { y[o + i] = x[o + i] * inv * g[i]; }
}
`;

/** x (T, nHeads, headDim) in place; cos, sin (T, headDim/2). One thread per (t, head, i < half). */
export const ROPE_WGSL = /* wgsl */ `
struct P { n: u32, nHeads: u32, headDim: u32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> cs: array<f32>;
@group(0) @binding(3) var<storage, read> sn: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.x + wid.y * 32768u) * 64u + lid;
  if (idx >= p.n) { return; }
  let half = p.headDim / 2u;
  let i = idx % half;
  let th = idx / half; // t · nHeads + h
  let t = th / p.nHeads;
  let o = th * p.headDim;
  let c = cs[t * half + i];
  let s = sn[t * half + i];
  let a = x[o + i];
  let b = x[o + half + i];
  x[o + i] = a * c - b * s;
  x[o + half + i] = b * c + a * s;
}
`;

export const SILU_MUL_WGSL = /* wgsl */ `
struct P { n: u32, a: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> gate: array<f32>;
@group(0) @binding(2) var<storage, read> up: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * 32768u) * 64u + lid;
  if (i >= p.n) { return; }
  let g = gate[i];
  gate[i] = g / (1.0 + exp(-g)) * up[i];
}
`;

export const ADD_WGSL = /* wgsl */ `
struct P { n: u32, a: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * 32768u) * 64u + lid;
  if (i >= p.n) { return; }
  y[i] += x[i];
}
`;

/** RMSNorm with one thread per token row (no barriers: CPU drivers). */
export const RMSNORM_THREAD_WGSL = /* wgsl */ `
struct P { T: u32, dim: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * 32768u) * 64u + lid;
  if (t >= p.T) { return; }
  let o = t * p.dim;
  var ss = 0.0;
  for (var i = 0u; i < p.dim; i++) { let v = x[o + i]; ss += v * v; }
  let inv = 1.0 / sqrt(ss / f32(p.dim) + p.eps);
  for (var i = 0u; i < p.dim; i++) { y[o + i] = x[o + i] * inv * g[i]; }
}
`;
