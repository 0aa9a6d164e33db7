/**
 * WGSL decoders for the legacy GGUF block types (32 values per block): q4_0, q4_1, q5_0, q5_1, q8_0.
 * Each defines `decode_unit(o, s) -> array<vec4<f32>, 8>`: the 32 values of unit s (always 0 here: one unit per
 * block) of the block at byte o of the binding `w`, in column order (element i of vector k is column 4k + i).
 * Layouts and arithmetic follow src/backend/ts/blocks.ts (the spec): f16 scales decoded by hand (f16_to_f32), the
 * quants read 4 bytes at a time (wu32: blocks sit at any even byte offset, so words may straddle).
 */

/** Shared by every decoder: 4 bytes at any byte offset, and a word split into its 4 bytes. */
export const WGSL_DECODE_HELPERS = /* wgsl */ `
fn wu32(i: u32) -> u32 {
  let s = (i & 3u) * 8u;
  let a = w[i >> 2u];
  if (s == 0u) { return a; }
  return (a >> s) | (w[(i >> 2u) + 1u] << (32u - s));
}
fn bytes4(q: u32) -> vec4<u32> { return (vec4<u32>(q) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu); }
fn sbytes4(q: u32) -> vec4<i32> {
  // the 4 bytes as int8 (sign-extended by an arithmetic shift)
  return bitcast<vec4<i32>>(vec4<u32>(q) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
}
`;

// Q4_0 (18 bytes): f16 d; u8 qs[16]. Column j < 16 = (qs[j] & 15) − 8, column j + 16 = (qs[j] >> 4) − 8; × d.
const Q4_0 = /* wgsl */ `
fn decode_unit(o: u32, s: u32) -> array<vec4<f32>, 8> {
  var r: array<vec4<f32>, 8>;
  let d = f16_to_f32(wu16(o));
  for (var k = 0u; k < 4u; k++) {
    let b = bytes4(wu32(o + 2u + 4u * k));
    r[k] = (vec4<f32>(b & vec4<u32>(15u)) - 8.0) * d;
    r[k + 4u] = (vec4<f32>(b >> vec4<u32>(4u)) - 8.0) * d;
  }
  return r;
}
`;

// Q4_1 (20 bytes): f16 d, f16 m; u8 qs[16]; unsigned nibbles, x·d + m.
const Q4_1 = /* wgsl */ `
fn decode_unit(o: u32, s: u32) -> array<vec4<f32>, 8> {
  var r: array<vec4<f32>, 8>;
  let d = f16_to_f32(wu16(o));
  let m = f16_to_f32(wu16(o + 2u));
  for (var k = 0u; k < 4u; k++) {
    let b = bytes4(wu32(o + 4u + 4u * k));
    r[k] = vec4<f32>(b & vec4<u32>(15u)) * d + m;
    r[k + 4u] = vec4<f32>(b >> vec4<u32>(4u)) * d + m;
  }
  return r;
}
`;

/** Q5_0 / Q5_1: qh bit j is the 5th bit of column j; qs as Q4_x. `body` turns the 5-bit values into floats. */
function q5(qhAt: number, qsAt: number, prologue: string, lo: string, hi: string): string {
  return /* wgsl */ `
fn decode_unit(o: u32, s: u32) -> array<vec4<f32>, 8> {
  var r: array<vec4<f32>, 8>;
  ${prologue}
  let qh = vec4<u32>(wu32(o + ${qhAt}u));
  for (var k = 0u; k < 4u; k++) {
    let b = bytes4(wu32(o + ${qsAt}u + 4u * k));
    let sh = vec4<u32>(0u, 1u, 2u, 3u) + 4u * k;
    let x0 = (b & vec4<u32>(15u)) | (((qh >> sh) & vec4<u32>(1u)) << vec4<u32>(4u));
    let x1 = (b >> vec4<u32>(4u)) | (((qh >> (sh + 16u)) & vec4<u32>(1u)) << vec4<u32>(4u));
    r[k] = ${lo};
    r[k + 4u] = ${hi};
  }
  return r;
}
`;
}

// Q5_0 (22 bytes): f16 d; u32 qh; u8 qs[16]; (5-bit − 16)·d.
const Q5_0 = q5(2, 6, "let d = f16_to_f32(wu16(o));", "(vec4<f32>(x0) - 16.0) * d", "(vec4<f32>(x1) - 16.0) * d");
// Q5_1 (24 bytes): f16 d, f16 m; u32 qh; u8 qs[16]; 5-bit·d + m.
const Q5_1 = q5(4, 8, "let d = f16_to_f32(wu16(o));\n  let m = f16_to_f32(wu16(o + 2u));", "vec4<f32>(x0) * d + m", "vec4<f32>(x1) * d + m");

// Q8_0 (34 bytes): f16 d; i8 qs[32]; qs·d.
const Q8_0 = /* wgsl */ `
fn decode_unit(o: u32, s: u32) -> array<vec4<f32>, 8> {
  var r: array<vec4<f32>, 8>;
  let d = f16_to_f32(wu16(o));
  for (var k = 0u; k < 8u; k++) {
    r[k] = vec4<f32>(sbytes4(wu32(o + 2u + 4u * k))) * d;
  }
  return r;
}
`;

export const LEGACY_DECODERS = { q4_0: Q4_0, q4_1: Q4_1, q5_0: Q5_0, q5_1: Q5_1, q8_0: Q8_0 } as const;
