/**
 * WGSL decoders for the K-quants (256 values per block, 8 units of 32): q2_k, q3_k, q4_k, q5_k, q6_k.
 * `decode_unit(o, s)` returns columns 32s … 32s + 31 of the block at byte o (element i of vector k = column
 * 32s + 4k + i). Each unit is one run of ggml's dequantize_row_* loops (src/backend/ts/blocks.ts): a fixed
 * (half, shift) or (chunk, nibble) pair, so a unit reads 32 contiguous quant bytes plus its one or two scales.
 */

// Q2_K (84 bytes): u8 scales[16] (low nibble scale, high nibble min) at 0; u8 qs[64] at 16; f16 d at 80,
// dmin at 82. Unit s = 4·half + j: 2-bit values (qs[32·half + l] >> 2j) & 3, l < 32; scale byte 2s (l < 16)
// or 2s + 1 (l ≥ 16); y = d·sc·q − dmin·m.
const Q2_K = /* wgsl */ `
fn decode_unit(o: u32, s: u32) -> array<vec4<f32>, 8> {
  var r: array<vec4<f32>, 8>;
  let d = f16_to_f32(wu16(o + 80u));
  let dmin = f16_to_f32(wu16(o + 82u));
  let sc0 = wbyte(o + 2u * s);
  let sc1 = wbyte(o + 2u * s + 1u);
  let dl0 = d * f32(sc0 & 15u);
  let ml0 = dmin * f32(sc0 >> 4u);
  let dl1 = d * f32(sc1 & 15u);
  let ml1 = dmin * f32(sc1 >> 4u);
  let q = o + 16u + 32u * (s >> 2u);
  let sh = vec4<u32>(2u * (s & 3u));
  for (var k = 0u; k < 8u; k++) {
    let v = vec4<f32>((bytes4(wu32(q + 4u * k)) >> sh) & vec4<u32>(3u));
    if (k < 4u) { r[k] = v * dl0 - ml0; } else { r[k] = v * dl1 - ml1; }
  }
  return r;
}
`;

// Q3_K (110 bytes): u8 hmask[32] at 0 (bit 4·half + j of byte l: set → +0, clear → −4); u8 qs[64] at 32 (low
// 2 bits as Q2_K); u8 scales[12] at 96 (16 six-bit scales: low 4 bits in bytes 0–7, high 2 in bytes 8–11);
// f16 d at 108. y = d·(scale − 32)·(q2 − (hbit ? 0 : 4)).
const Q3_K = /* wgsl */ `
fn q3_scale(o: u32, i: u32) -> f32 {
  let lo = select(wbyte(o + 96u + i - 8u) >> 4u, wbyte(o + 96u + i) & 15u, i < 8u);
  let hi = (wbyte(o + 104u + (i & 3u)) >> (2u * (i >> 2u))) & 3u;
  return f32(i32(lo | (hi << 4u)) - 32);
}
fn decode_unit(o: u32, s: u32) -> array<vec4<f32>, 8> {
  var r: array<vec4<f32>, 8>;
  let d = f16_to_f32(wu16(o + 108u));
  let dl0 = d * q3_scale(o, 2u * s);
  let dl1 = d * q3_scale(o, 2u * s + 1u);
  let q = o + 32u + 32u * (s >> 2u);
  let sh = vec4<u32>(2u * (s & 3u));
  let hs = vec4<u32>(s);  // hmask bit: 4·half + j = s
  for (var k = 0u; k < 8u; k++) {
    let q2 = vec4<i32>((bytes4(wu32(q + 4u * k)) >> sh) & vec4<u32>(3u));
    let hb = vec4<i32>((bytes4(wu32(o + 4u * k)) >> hs) & vec4<u32>(1u));
    let v = vec4<f32>(q2 - 4 * (vec4<i32>(1) - hb));
    if (k < 4u) { r[k] = dl0 * v; } else { r[k] = dl1 * v; }
  }
  return r;
}
`;

/** The 6-bit (scale, min) pair j of a Q4_K / Q5_K block's scales field at byte o + 4 (ggml get_scale_min_k4). */
const SCALE_MIN_K4 = /* wgsl */ `
fn scale_min_k4(o: u32, j: u32) -> vec2<f32> {
  let s = o + 4u;
  if (j < 4u) { return vec2<f32>(f32(wbyte(s + j) & 63u), f32(wbyte(s + j + 4u) & 63u)); }
  let a = wbyte(s + j + 4u);
  return vec2<f32>(f32((a & 15u) | ((wbyte(s + j - 4u) >> 6u) << 4u)), f32((a >> 4u) | ((wbyte(s + j) >> 6u) << 4u)));
}
`;

// Q4_K (144 bytes): f16 d, dmin; scales[12]; qs[128] at 16. Unit s: chunk s >> 1 (32 bytes of qs), the low
// (s even) or high nibble, scale/min pair s; y = d·sc·q − dmin·m.
// Q5_K (176 bytes): as Q4_K with qh[32] at 16 (bit s of byte l = 5th bit of unit s's column l) and qs at 48.
function scaleMinK(five: boolean): string {
  const hi = five ? " | (((bytes4(wu32(o + 16u + 4u * k)) >> vec4<u32>(s)) & vec4<u32>(1u)) << vec4<u32>(4u))" : "";
  return SCALE_MIN_K4 + /* wgsl */ `
fn decode_unit(o: u32, s: u32) -> array<vec4<f32>, 8> {
  var r: array<vec4<f32>, 8>;
  let d = f16_to_f32(wu16(o));
  let dmin = f16_to_f32(wu16(o + 2u));
  let sm = scale_min_k4(o, s);
  let d1 = d * sm.x;
  let m1 = dmin * sm.y;
  let q = o + ${five ? 48 : 16}u + 32u * (s >> 1u);
  let sh = vec4<u32>(4u * (s & 1u));
  for (var k = 0u; k < 8u; k++) {
    r[k] = vec4<f32>(((bytes4(wu32(q + 4u * k)) >> sh) & vec4<u32>(15u))${hi}) * d1 - m1;
  }
  return r;
}
`;
}
const Q4_K = scaleMinK(false);
const Q5_K = scaleMinK(true);

// Q6_K (210 bytes): u8 ql[128] at 0, u8 qh[64] at 128, i8 scales[16] at 192, f16 d at 208. Unit s = 4·half + k6:
// column l < 32 takes ql[64·half + 32·(k6 & 1) + l] nibble k6 >> 1, qh[128 + 32·half + l] bits 2·k6 … 2·k6+1,
// value − 32, times d·scales[8·half + 2·k6 + l / 16].
const Q6_K = /* wgsl */ `
fn decode_unit(o: u32, s: u32) -> array<vec4<f32>, 8> {
  var r: array<vec4<f32>, 8>;
  let d = f16_to_f32(wu16(o + 208u));
  let half = s >> 2u;
  let k6 = s & 3u;
  let sc = o + 192u + 8u * half + 2u * k6;
  let dl0 = d * f32((i32(wbyte(sc)) << 24u) >> 24u);
  let dl1 = d * f32((i32(wbyte(sc + 1u)) << 24u) >> 24u);
  let ql = o + 64u * half + 32u * (k6 & 1u);
  let qh = o + 128u + 32u * half;
  let lsh = vec4<u32>(4u * (k6 >> 1u));
  let hsh = vec4<u32>(2u * k6);
  for (var k = 0u; k < 8u; k++) {
    let lo = (bytes4(wu32(ql + 4u * k)) >> lsh) & vec4<u32>(15u);
    let hi = ((bytes4(wu32(qh + 4u * k)) >> hsh) & vec4<u32>(3u)) << vec4<u32>(4u);
    let v = vec4<f32>(vec4<i32>(lo | hi) - vec4<i32>(32));
    if (k < 4u) { r[k] = dl0 * v; } else { r[k] = dl1 * v; }
  }
  return r;
}
`;

export const KQUANT_DECODERS = { q2_k: Q2_K, q3_k: Q3_K, q4_k: Q4_K, q5_k: Q5_K, q6_k: Q6_K } as const;
