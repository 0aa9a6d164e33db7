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

/**
 * q (T, nHeads, headDim) and k (T, nKvHeads, headDim) in place, in one dispatch; cos, sin (T, headDim/2).
 * One thread per (t, head, i < half): threads [0, nq) rotate q, the rest k (nKvHeads 0: q only).
 */
export const ROPE_WGSL = /* wgsl */ `
struct P { nq: u32, nk: u32, nHeads: u32, nKvHeads: u32, headDim: u32, a: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> k: array<f32>;
@group(0) @binding(3) var<storage, read> cs: array<f32>;
@group(0) @binding(4) var<storage, read> sn: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  var idx = (wid.x + wid.y * 32768u) * 64u + lid;
  if (idx >= p.nq + p.nk) { return; }
  let isK = idx >= p.nq;
  if (isK) { idx -= p.nq; }
  let heads = select(p.nHeads, p.nKvHeads, isK);
  let half = p.headDim / 2u;
  let i = idx % half;
  let th = idx / half; // t · heads + h
  let t = th / heads;
  let o = th * p.headDim;
  let c = cs[t * half + i];
  let s = sn[t * half + i];
  if (isK) {
    let a = k[o + i];
    let b = k[o + half + i];
    k[o + i] = a * c - b * s;
    k[o + half + i] = b * c + a * s;
  } else {
    let a = q[o + i];
    let b = q[o + half + i];
    q[o + i] = a * c - b * s;
    q[o + half + i] = b * c + a * s;
  }
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

/** gate (T, n) = silu(gu[:, :n]) ⊙ gu[:, n:] for the fused [gate; up] output gu (T, 2n). */
export const SILU_MUL_HALVES_WGSL = /* wgsl */ `
struct P { total: u32, n: u32, b: u32, c: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> gate: array<f32>;
@group(0) @binding(2) var<storage, read> gu: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * 32768u) * 64u + lid;
  if (i >= p.total) { return; }
  let t = i / p.n;
  let j = i % p.n;
  let g = gu[2u * t * p.n + j];
  gate[i] = g / (1.0 + exp(-g)) * gu[2u * t * p.n + p.n + j];
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

/**
 * The residual add fused with the next RMSNorm: x (T, dim) += d, then y = rmsnorm(x) ⊙ g (one dispatch instead
 * of two between every pair of blocks). Thread style: one thread per row; workgroup style: 64 per row.
 */
export function addRmsnormWgsl(style: "thread" | "workgroup"): string {
  const head = /* wgsl */ `
struct P { T: u32, dim: u32, eps: f32, pad: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> d: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
`;
  if (style === "thread") {
    return head + /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * 32768u) * 64u + lid;
  if (t >= p.T) { return; }
  let o = t * p.dim;
  var ss = 0.0;
  for (var i = 0u; i < p.dim; i++) { let v = x[o + i] + d[o + i]; x[o + i] = v; ss += v * v; }
  let inv = 1.0 / sqrt(ss / f32(p.dim) + p.eps);
  for (var i = 0u; i < p.dim; i++) { y[o + i] = x[o + i] * inv * g[i]; }
}
`;
  }
  return head + /* wgsl */ `
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wid.x + wid.y * 32768u;
  if (t >= p.T) { return; }
  let o = t * p.dim;
  var ss = 0.0;
  for (var i = lid; i < p.dim; i += 64u) { let v = x[o + i] + d[o + i]; x[o + i] = v; ss += v * v; }
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
}
