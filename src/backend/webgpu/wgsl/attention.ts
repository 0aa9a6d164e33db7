/**
 * KV cache kernels over the paged layout of kv/layout.ts, on the GPU mirror of a pool ("arena": block b at
 * word b · blockWords). Each token n of a forward has tokmeta[2n] = its position, tokmeta[2n + 1] = the offset of its
 * sequence's block table in `tables`, so one dispatch serves a batch of sequences of any lengths.
 * f16 keys / values are stored as IEEE halves packed two per word (rounded to nearest even like tensor.ts's
 * f32ToF16), read back with exact bit math: no shader-f16 needed.
 */
import { WGSL_F16 } from "../registry.js";

const KV_PARAMS = /* wgsl */ `
struct P {
  N: u32, nHeads: u32, nKvHeads: u32, headDim: u32,
  blockSize: u32, regionWords: u32, blockWords: u32, layer: u32,
  kind: u32,       // 0 f32, 1 f16, 2 q8_0
  scale: f32,
  group: u32,      // q8_0: values per scale
  scaleWords: u32, // q8_0: word offset of the scales inside a region
}
@group(0) @binding(0) var<uniform> p: P;
`;

const F32_TO_F16 = /* wgsl */ `
fn f32_to_f16(f: f32) -> u32 {
  let u = bitcast<u32>(f);
  let s = (u >> 16u) & 0x8000u;
  let ex = (u >> 23u) & 0xffu;
  let m = u & 0x7fffffu;
  if (ex == 0xffu) { return s | 0x7c00u | select(0u, 0x200u, m != 0u); }
  if (ex >= 143u) { return s | 0x7c00u; }
  if (ex <= 112u) {
    if (ex < 102u) { return s; }
    let mm = m | 0x800000u;
    let shift = 126u - ex;
    let half = 1u << (shift - 1u);
    var r = mm >> shift;
    let rem = mm & ((1u << shift) - 1u);
    if (rem > half || (rem == half && (r & 1u) == 1u)) { r += 1u; }
    return s | r;
  }
  // carry out of the mantissa bumps the exponent; 0x7c00 (inf) when it overflows, as tensor.ts
  var h = ((ex - 112u) << 10u) | (m >> 13u);
  let rem = m & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u) == 1u)) { h += 1u; }
  return s | h;
}
`;

/** Value i of key (isV 0) or value (isV 1) `tok` of kv head kvh, for the sequence whose table is at toff. */
const LOAD = /* wgsl */ `
fn load(isV: u32, tok: u32, kvh: u32, toff: u32, i: u32) -> f32 {
  let blk = u32(tables[toff + tok / p.blockSize]);
  let base = blk * p.blockWords + (2u * p.layer + isV) * p.regionWords; // words
  let el = (kvh * p.blockSize + tok % p.blockSize) * p.headDim + i; // elements inside the region
  if (p.kind == 1u) { return f16_to_f32((arena[base + (el >> 1u)] >> ((el & 1u) * 16u)) & 0xffffu); }
  if (p.kind == 2u) {
    // int8 value × its group's f16 scale: exact in f32 (8 × 11 significant bits)
    let q = f32(i32(((arena[base + (el >> 2u)] >> ((el & 3u) * 8u)) & 0xffu) << 24u) >> 24u);
    let si = el / p.group;
    return q * f16_to_f32((arena[base + p.scaleWords + (si >> 1u)] >> ((si & 1u) * 16u)) & 0xffffu);
  }
  return bitcast<f32>(arena[base + el]);
}
`;

/** Writes k and v (N, nKvHeads·headDim) into the arena; one thread per stored word (f16: two values). */
export const KV_WRITE_WGSL = /* wgsl */ `
${KV_PARAMS}
@group(0) @binding(1) var<storage, read> tokmeta: array<u32>;
@group(0) @binding(2) var<storage, read> tables: array<i32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> arena: array<u32>;
${F32_TO_F16}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let per = select(1u, 2u, p.kind == 1u); // values per word
  let wordsPerTok = p.nKvHeads * p.headDim / per;
  let idx = (wid.x + wid.y * 32768u) * 64u + lid;
  if (idx >= 2u * p.N * wordsPerTok) { return; }
  let isV = idx / (p.N * wordsPerTok);
  let rest = idx % (p.N * wordsPerTok);
  let n = rest / wordsPerTok;
  let e = (rest % wordsPerTok) * per; // element in the token's (nKvHeads·headDim) row
  let h = e / p.headDim;
  let i = e % p.headDim;
  let pos = tokmeta[2u * n];
  let blk = u32(tables[tokmeta[2u * n + 1u] + pos / p.blockSize]);
  let el = (h * p.blockSize + pos % p.blockSize) * p.headDim + i;
  let base = blk * p.blockWords + (2u * p.layer + isV) * p.regionWords;
  let src = n * p.nKvHeads * p.headDim + e;
  var a: f32; var b: f32;
  if (isV == 1u) { a = v[src]; b = v[src + per - 1u]; } else { a = k[src]; b = k[src + per - 1u]; }
  if (p.kind == 1u) {
    arena[base + el / 2u] = f32_to_f16(a) | (f32_to_f16(b) << 16u);
  } else {
    arena[base + el] = bitcast<u32>(a);
  }
}
`;

/**
 * q8_0 keys and values: one thread per (K or V, token, kv head, group) quantizes its group as llama.cpp's Q8_0
 * and the TS kvWriteRef (d = amax / 127 rounded to f32 then stored as f16, q = round-half-away(x · (1/d))).
 * Groups of adjacent rows may share a word (headDim not a multiple of 4, the f16 scales), so bytes are
 * merged with atomicAnd / atomicOr on the thread's own bits. Divisions get one fma correction step, since WGSL
 * allows 2.5 ULP for "/" and the stored bytes should equal the CPU's.
 */
export const KV_WRITE_Q8_WGSL = /* wgsl */ `
${KV_PARAMS}
@group(0) @binding(1) var<storage, read> tokmeta: array<u32>;
@group(0) @binding(2) var<storage, read> tables: array<i32>;
@group(0) @binding(3) var<storage, read> k: array<f32>;
@group(0) @binding(4) var<storage, read> v: array<f32>;
@group(0) @binding(5) var<storage, read_write> arena: array<atomic<u32>>;
${F32_TO_F16}
fn div_rn(a: f32, b: f32) -> f32 {
  let q = a / b;
  return q + fma(-q, b, a) / b;
}
fn put(word: u32, shift: u32, bits: u32, mask: u32) {
  atomicAnd(&arena[word], ~(mask << shift));
  atomicOr(&arena[word], (bits & mask) << shift);
}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let groups = p.headDim / p.group;
  let perTok = p.nKvHeads * groups;
  let idx = (wid.x + wid.y * 32768u) * 64u + lid;
  if (idx >= 2u * p.N * perTok) { return; }
  let isV = idx / (p.N * perTok);
  let rest = idx % (p.N * perTok);
  let n = rest / perTok;
  let h = (rest % perTok) / groups;
  let g = (rest % groups) * p.group;
  let pos = tokmeta[2u * n];
  let blk = u32(tables[tokmeta[2u * n + 1u] + pos / p.blockSize]);
  let base = blk * p.blockWords + (2u * p.layer + isV) * p.regionWords;
  let el = (h * p.blockSize + pos % p.blockSize) * p.headDim + g;
  let src = n * p.nKvHeads * p.headDim + h * p.headDim + g;
  var amax = 0.0;
  for (var i = 0u; i < p.group; i++) {
    let x = select(k[src + i], v[src + i], isV == 1u);
    amax = max(amax, abs(x));
  }
  let d = div_rn(amax, 127.0);
  var id = 0.0;
  if (d != 0.0) { id = div_rn(1.0, d); }
  for (var i = 0u; i < p.group; i++) {
    let x = select(k[src + i], v[src + i], isV == 1u) * id;
    // half away from zero; a − floor(a) is exact, a + 0.5 would round in f32
    let a = abs(x);
    var r = floor(a);
    if (a - r >= 0.5) { r += 1.0; }
    let q = i32(sign(x) * r);
    let b = el + i;
    put(base + (b >> 2u), (b & 3u) * 8u, u32(q), 0xffu);
  }
  let si = el / p.group;
  put(base + p.scaleWords + (si >> 1u), (si & 1u) * 16u, f32_to_f16(d), 0xffffu);
}
`;

/**
 * Causal attention, GQA, one workgroup of 64 per (token, head): keys in chunks of 64 (one per thread), online
 * softmax in f32 (running max and sum rescaled per chunk), each thread accumulating up to 4 output dims.
 * q (N, nHeads·headDim); out (N, nHeads·headDim). headDim ≤ 256.
 */
export const ATTENTION_WGSL = /* wgsl */ `
${KV_PARAMS}
@group(0) @binding(1) var<storage, read> tokmeta: array<u32>;
@group(0) @binding(2) var<storage, read> tables: array<i32>;
@group(0) @binding(3) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read> arena: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
var<workgroup> qs: array<f32, 256>;
var<workgroup> sc: array<f32, 64>;
var<workgroup> red: array<f32, 64>;
${WGSL_F16}
${LOAD}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let nh = wid.x + wid.y * 32768u;
  if (nh >= p.N * p.nHeads) { return; }
  let n = nh / p.nHeads;
  let h = nh % p.nHeads;
  let kvh = h / (p.nHeads / p.nKvHeads);
  let hd = p.headDim;
  let qo = nh * hd;
  for (var i = lid; i < hd; i += 64u) { qs[i] = q[qo + i]; }
  let pos = tokmeta[2u * n];
  let toff = tokmeta[2u * n + 1u];
  workgroupBarrier();
  var m = -3.0e38;
  var l = 0.0;
  var acc: array<f32, 4>;
  for (var base = 0u; base <= pos; base += 64u) {
    let s = base + lid;
    var score = -3.0e38;
    if (s <= pos) {
      var d = 0.0;
      for (var i = 0u; i < hd; i++) { d += qs[i] * load(0u, s, kvh, toff, i); }
      score = d * p.scale;
    }
    red[lid] = score;
    for (var st = 32u; st > 0u; st >>= 1u) {
      workgroupBarrier();
      if (lid < st) { red[lid] = max(red[lid], red[lid + st]); }
    }
    workgroupBarrier();
    let mNew = max(m, red[0]);
    let corr = exp(m - mNew);
    sc[lid] = select(0.0, exp(score - mNew), s <= pos);
    workgroupBarrier();
    let cnt = min(64u, pos + 1u - base);
    var psum = 0.0;
    for (var j = 0u; j < cnt; j++) { psum += sc[j]; }
    l = l * corr + psum;
    for (var c = 0u; c < 4u; c++) {
      let i = lid + c * 64u;
      if (i < hd) {
        var a = acc[c] * corr;
        for (var j = 0u; j < cnt; j++) { a += sc[j] * load(1u, base + j, kvh, toff, i); }
        acc[c] = a;
      }
    }
    m = mNew;
    workgroupBarrier();
  }
  for (var c = 0u; c < 4u; c++) {
    let i = lid + c * 64u;
    if (i < hd) { out[qo + i] = acc[c] / l; }
  }
}
`;

/**
 * The same attention with one thread per (token, head) and no barriers (CPU drivers): two passes over the
 * keys as the TS reference (max of the scores, then exp-sum and the weighted values).
 */
export const ATTENTION_THREAD_WGSL = /* wgsl */ `
${KV_PARAMS}
@group(0) @binding(1) var<storage, read> tokmeta: array<u32>;
@group(0) @binding(2) var<storage, read> tables: array<i32>;
@group(0) @binding(3) var<storage, read> q: array<f32>;
@group(0) @binding(4) var<storage, read> arena: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
${WGSL_F16}
${LOAD}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let nh = (wid.x + wid.y * 32768u) * 64u + lid;
  if (nh >= p.N * p.nHeads) { return; }
  let n = nh / p.nHeads;
  let h = nh % p.nHeads;
  let kvh = h / (p.nHeads / p.nKvHeads);
  let hd = p.headDim;
  let qo = nh * hd;
  let pos = tokmeta[2u * n];
  let toff = tokmeta[2u * n + 1u];
  var m = -3.0e38;
  for (var s = 0u; s <= pos; s++) {
    var d = 0.0;
    for (var i = 0u; i < hd; i++) { d += q[qo + i] * load(0u, s, kvh, toff, i); }
    m = max(m, d * p.scale);
  }
  var acc: array<f32, 256>;
  var l = 0.0;
  for (var s = 0u; s <= pos; s++) {
    var d = 0.0;
    for (var i = 0u; i < hd; i++) { d += q[qo + i] * load(0u, s, kvh, toff, i); }
    let e = exp(d * p.scale - m);
    l += e;
    for (var i = 0u; i < hd; i++) { acc[i] += e * load(1u, s, kvh, toff, i); }
  }
  let inv = 1.0 / l;
  for (var i = 0u; i < hd; i++) { out[qo + i] = acc[i] * inv; }
}
`;
