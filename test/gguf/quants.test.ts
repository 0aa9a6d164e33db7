/**
 * Hand-built blocks: each test encodes chosen integer quants and scales element by element, straight from the
 * ggml block definitions (ggml-common.h), then checks dequantize() gives d·q (− m) for every element.
 * Scales are exact binary fractions, so the expected values are exact and compared with deepEqual.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { dequantize, quantizeQ4_0, quantizeQ8_0 } from "../../src/gguf/quants.js";
import { GGML } from "../../src/gguf/types.js";
import { f32ToF16, f16ToF32 } from "../../src/tensor.js";

/** Deterministic integers in [lo, hi]. */
function rng(seed: number): (lo: number, hi: number) => number {
  let s = seed >>> 0;
  return (lo, hi) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + (s % (hi - lo + 1));
  };
}
const putF16 = (b: Uint8Array, o: number, x: number) => { const h = f32ToF16(x); b[o] = h & 255; b[o + 1] = h >> 8; };
const setBits = (b: Uint8Array, byte: number, shift: number, v: number) => { b[byte] |= v << shift; };

test("F32, F16, BF16 pass through", () => {
  const x = new Float32Array([1.5, -2.25, 0, 65504]);
  assert.deepEqual(dequantize(GGML.F32, new Uint8Array(x.buffer), 4), x);
  const h = new Uint16Array([...x].map(f32ToF16));
  assert.deepEqual(dequantize(GGML.F16, new Uint8Array(h.buffer), 4), x);
  const bf = new Uint16Array([0x3fc0, 0xc010, 0x0000, 0x4780]); // 1.5, -2.25, 0, 65536
  assert.deepEqual([...dequantize(GGML.BF16, new Uint8Array(bf.buffer), 4)], [1.5, -2.25, 0, 65536]);
});

test("Q4_0 / Q4_1: nibble j → element j, high nibble → j+16", () => {
  const r = rng(1);
  for (const withMin of [false, true]) {
    const size = withMin ? 20 : 18;
    const b = new Uint8Array(2 * size), want: number[] = [];
    for (let blk = 0; blk < 2; blk++) {
      const o = blk * size, d = blk ? 0.5 : -0.125, m = -3;
      putF16(b, o, d);
      if (withMin) putF16(b, o + 2, m);
      const qs = o + (withMin ? 4 : 2);
      for (let e = 0; e < 32; e++) {
        const q = r(0, 15);
        setBits(b, qs + (e % 16), e < 16 ? 0 : 4, q);
        want.push(withMin ? q * d + m : (q - 8) * d);
      }
    }
    assert.deepEqual([...dequantize(withMin ? GGML.Q4_1 : GGML.Q4_0, b, 64)], want);
  }
});

test("Q5_0 / Q5_1: 5th bit of element e is bit e of qh", () => {
  const r = rng(2);
  for (const withMin of [false, true]) {
    const size = withMin ? 24 : 22;
    const b = new Uint8Array(size), want: number[] = [];
    const d = 0.25, m = 1.5;
    putF16(b, 0, d);
    if (withMin) putF16(b, 2, m);
    const qh = withMin ? 4 : 2, qs = qh + 4;
    for (let e = 0; e < 32; e++) {
      const q = r(0, 31);
      setBits(b, qs + (e % 16), e < 16 ? 0 : 4, q & 15);
      setBits(b, qh + (e >> 3), e & 7, q >> 4);
      want.push(withMin ? q * d + m : (q - 16) * d);
    }
    assert.deepEqual([...dequantize(withMin ? GGML.Q5_1 : GGML.Q5_0, b, 32)], want);
  }
});

test("Q8_0: signed bytes times d", () => {
  const r = rng(3);
  const b = new Uint8Array(34), want: number[] = [];
  putF16(b, 0, 0.0625);
  for (let e = 0; e < 32; e++) {
    const q = r(-128, 127);
    b[2 + e] = q & 255;
    want.push(q * 0.0625);
  }
  assert.deepEqual([...dequantize(GGML.Q8_0, b, 32)], want);
});

test("Q2_K: 16 sub-blocks of 16 with 4-bit scale and min", () => {
  const r = rng(4);
  const b = new Uint8Array(84), want: number[] = [];
  const d = 0.5, dmin = 0.25;
  putF16(b, 80, d);
  putF16(b, 82, dmin);
  const sc: number[] = [], mn: number[] = [];
  for (let i = 0; i < 16; i++) { sc.push(r(0, 15)); mn.push(r(0, 15)); b[i] = sc[i] | (mn[i] << 4); }
  for (let e = 0; e < 256; e++) {
    const n = e >> 7, j = (e & 127) >> 5, sub = (e >> 4) & 1, l = e & 15;
    const q = r(0, 3), s = n * 8 + j * 2 + sub;
    setBits(b, 16 + n * 32 + sub * 16 + l, 2 * j, q);
    want.push(d * sc[s] * q - dmin * mn[s]);
  }
  assert.deepEqual([...dequantize(GGML.Q2_K, b, 256)], want);
});

test("Q3_K: 2 low bits + inverted high bit, 6-bit scales offset by 32", () => {
  const r = rng(5);
  const b = new Uint8Array(110), want: number[] = [];
  const d = 0.125;
  putF16(b, 108, d);
  const sc: number[] = [];
  for (let i = 0; i < 16; i++) {
    const s = r(0, 63);
    sc.push(s - 32);
    setBits(b, 96 + (i % 8), i < 8 ? 0 : 4, s & 15);
    setBits(b, 96 + 8 + (i % 4), 2 * Math.floor(i / 4), s >> 4);
  }
  for (let e = 0; e < 256; e++) {
    const n = e >> 7, j = (e & 127) >> 5, sub = (e >> 4) & 1, l = e & 15;
    const v = r(-4, 3); // = low2 − (hbit ? 0 : 4)
    const hbit = v >= 0 ? 1 : 0, low2 = hbit ? v : v + 4;
    setBits(b, 32 + n * 32 + sub * 16 + l, 2 * j, low2);
    setBits(b, sub * 16 + l, n * 4 + j, hbit);
    want.push(d * sc[n * 8 + j * 2 + sub] * v);
  }
  assert.deepEqual([...dequantize(GGML.Q3_K, b, 256)], want);
});

/** Packs 8 six-bit (scale, min) pairs into the 12-byte K-quant scales field at b[o]. */
function packK4(b: Uint8Array, o: number, sc: number[], mn: number[]): void {
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      setBits(b, o + j, 0, sc[j]);
      setBits(b, o + j + 4, 0, mn[j]);
    } else {
      setBits(b, o + j + 4, 0, sc[j] & 15);
      setBits(b, o + j + 4, 4, mn[j] & 15);
      setBits(b, o + j - 4, 6, sc[j] >> 4);
      setBits(b, o + j, 6, mn[j] >> 4);
    }
  }
}

for (const five of [false, true]) {
  test(`Q${five ? 5 : 4}_K: 8 sub-blocks of 32 with 6-bit scale and min`, () => {
    const r = rng(five ? 7 : 6);
    const b = new Uint8Array(five ? 176 : 144), want: number[] = [];
    const d = 0.25, dmin = 0.5;
    putF16(b, 0, d);
    putF16(b, 2, dmin);
    const sc: number[] = [], mn: number[] = [];
    for (let i = 0; i < 8; i++) { sc.push(r(0, 63)); mn.push(r(0, 63)); }
    packK4(b, 4, sc, mn);
    const qs = five ? 48 : 16;
    for (let e = 0; e < 256; e++) {
      const g = e >> 6, hi = (e >> 5) & 1, l = e & 31;
      const q = r(0, five ? 31 : 15);
      setBits(b, qs + g * 32 + l, 4 * hi, q & 15);
      if (five) setBits(b, 16 + l, 2 * g + hi, q >> 4);
      want.push(d * sc[2 * g + hi] * q - dmin * mn[2 * g + hi]);
    }
    assert.deepEqual([...dequantize(five ? GGML.Q5_K : GGML.Q4_K, b, 256)], want);
  });
}

test("Q6_K: 4 low bits in ql, 2 high bits in qh, int8 scales", () => {
  const r = rng(8);
  const b = new Uint8Array(210), want: number[] = [];
  const d = 0.0625;
  putF16(b, 208, d);
  const sc: number[] = [];
  for (let i = 0; i < 16; i++) { sc.push(r(-128, 127)); b[192 + i] = sc[i] & 255; }
  for (let e = 0; e < 256; e++) {
    const n = e >> 7, k = (e & 127) >> 5, l = e & 31;
    const q = r(0, 63);
    setBits(b, n * 64 + l + 32 * (k & 1), 4 * (k >> 1), q & 15);
    setBits(b, 128 + n * 32 + l, 2 * k, q >> 4);
    want.push(d * sc[n * 8 + (l >> 4) + 2 * k] * (q - 32));
  }
  assert.deepEqual([...dequantize(GGML.Q6_K, b, 256)], want);
});

test("Q8_0 / Q4_0 quantizers: error within half a step, scales as ggml computes them", () => {
  const r = rng(9);
  const x = new Float32Array(32 * 64).map(() => (r(0, 20000) - 10000) / 3000);
  x.fill(0, 0, 32); // an all-zero block must give d = 0 and zeros, not NaN
  // Q8_0 rounds to the nearest of ±127 steps: ≤ d/2. Q4_0 has 8 steps below zero but 7 above, so the side
  // opposite the largest value clips at 7d: ≤ d.
  for (const [type, q, steps, err] of [[GGML.Q8_0, quantizeQ8_0, 127, 0.5], [GGML.Q4_0, quantizeQ4_0, 8, 1]] as const) {
    const y = dequantize(type, q(x), x.length);
    for (let blk = 0; blk < 64; blk++) {
      let amax = 0;
      for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[blk * 32 + j]));
      const d = f16ToF32(f32ToF16(amax / steps));
      for (let j = 0; j < 32; j++) {
        const i = blk * 32 + j;
        // half a step, plus what rounding d to f16 can move the largest value (|q| ≤ steps)
        assert.ok(Math.abs(y[i] - x[i]) <= d * err + amax * 2 ** -11 + 1e-7, `type ${type} elem ${i}: ${y[i]} vs ${x[i]}`);
      }
    }
    assert.ok(y.subarray(0, 32).every((v) => v === 0), "zero block"); // Q4_0 gives −0 (d = 0/−8), as ggml does
  }
  // Q8_0 of values that are integer multiples of d = max|x| / 127 (here 0.25) is lossless.
  const exact = Float32Array.from({ length: 32 }, (_, i) => (i - 16) * 0.25);
  exact[0] = -127 * 0.25;
  assert.deepEqual(dequantize(GGML.Q8_0, quantizeQ8_0(exact), 32), exact);
});

test("unsupported types and short data are clear errors", () => {
  assert.throws(() => dequantize(16, new Uint8Array(66), 256), /IQ2_XXS cannot be dequantized/);
  assert.throws(() => dequantize(GGML.Q8_0, new Uint8Array(33), 32), /cannot hold 32 elements/);
});
