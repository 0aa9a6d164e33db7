/**
 * The K-quant writers (src/gguf/kquantize.ts) round-tripped through the dequantizers (ggml's decoding, checked
 * against llama.cpp in llama-cpp.test.ts): RMS error per type on Gaussian rows with a few outliers, the error
 * ordering the bit widths promise, better than the plain legacy type of the same width, exact zeros, and the
 * bit-field placement on values that hit every code.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { quantizeQ2_K, quantizeQ3_K, quantizeQ4_K, quantizeQ5_K, quantizeQ6_K, quantizeQ5_0, quantizeQ5_1 } from "../../src/gguf/kquantize.js";
import { dequantize, quantizeQ4_0, quantizeQ8_0 } from "../../src/gguf/quants.js";
import { GGML } from "../../src/gguf/types.js";
import { rng } from "../helpers/rng.js";

/** n Gaussian values (Box–Muller), 1 % of them ×6: weight rows with outliers. */
function gaussian(n: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    x[i] = g * 0.02 * (r() < 0.01 ? 6 : 1);
  }
  return x;
}

/** RMS(dequant(quant(x)) − x) / RMS(x). */
function relRms(x: Float32Array, y: Float32Array): number {
  let e = 0, s = 0;
  for (let i = 0; i < x.length; i++) {
    e += (y[i] - x[i]) ** 2;
    s += x[i] ** 2;
  }
  return Math.sqrt(e / s);
}

const WRITERS: [string, number, (x: Float32Array) => Uint8Array, number][] = [
  // name, ggml type, writer, bound on the relative RMS error (measured values in src/gguf/kquantize.ts)
  ["Q2_K", GGML.Q2_K, quantizeQ2_K, 0.35],
  ["Q3_K", GGML.Q3_K, quantizeQ3_K, 0.2],
  ["Q4_K", GGML.Q4_K, quantizeQ4_K, 0.092],
  ["Q5_K", GGML.Q5_K, quantizeQ5_K, 0.046],
  ["Q6_K", GGML.Q6_K, quantizeQ6_K, 0.025],
  ["Q5_0", GGML.Q5_0, quantizeQ5_0, 0.065],
  ["Q5_1", GGML.Q5_1, quantizeQ5_1, 0.048],
];

test("K-quant writers round-trip within their stated RMS error, ordered by bits", () => {
  const x = gaussian(256 * 64, 11);
  const err: Record<string, number> = {};
  for (const [name, type, write, bound] of WRITERS) {
    const bytes = write(x);
    const y = dequantize(type, bytes, x.length);
    err[name] = relRms(x, y);
    assert.ok(err[name] <= bound, `${name}: relative RMS error ${err[name]} > ${bound}`);
  }
  err.Q4_0 = relRms(x, dequantize(GGML.Q4_0, quantizeQ4_0(x), x.length));
  err.Q8_0 = relRms(x, dequantize(GGML.Q8_0, quantizeQ8_0(x), x.length));
  console.log(`# relative RMS error vs f32: ${Object.entries(err).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(", ")}`);
  assert.ok(err.Q2_K > err.Q3_K && err.Q3_K > err.Q4_K && err.Q4_K > err.Q5_K && err.Q5_K > err.Q6_K && err.Q6_K > err.Q8_0);
  // the searched scales and mins beat the plain rules of the same bit width
  assert.ok(err.Q4_K < err.Q4_0, `Q4_K ${err.Q4_K} vs Q4_0 ${err.Q4_0}`);
  assert.ok(err.Q5_K < err.Q5_0, `Q5_K ${err.Q5_K} vs Q5_0 ${err.Q5_0}`);
});

test("K-quant writers: block sizes, zeros stay exactly zero, wrong lengths are refused", () => {
  const sizes: Record<string, number> = { Q2_K: 84, Q3_K: 110, Q4_K: 144, Q5_K: 176, Q6_K: 210, Q5_0: 22 * 8, Q5_1: 24 * 8 };
  for (const [name, type, write] of WRITERS) {
    const zeros = new Float32Array(256);
    const bytes = write(zeros);
    assert.equal(bytes.length, sizes[name], name);
    assert.ok(dequantize(type, bytes, 256).every((v) => v === 0), name); // (−0 from code − offset times d = 0 counts)
    // one block of zeros between two non-zero ones decodes to zeros (no state leaks between blocks)
    const x = gaussian(768, 5);
    x.fill(0, 256, 512);
    const y = dequantize(type, write(x), 768);
    assert.ok(y.subarray(256, 512).every((v) => v === 0), `${name}: zero block`);
    const n = name.endsWith("_K") ? 255 : 31;
    assert.throws(() => write(new Float32Array(n)), /not a multiple of/, name);
  }
});

test("K-quant writers place every code: a block of one value per code comes back close, sign and order kept", () => {
  // 256 values spanning [−1, 1] in order (every code of every type is used); a permutation check: the decoded
  // values must be non-decreasing within each sub-block wherever the quantizer keeps distinct levels, so a
  // swapped bit field (wrong column ↔ code placement) shows up as an order violation.
  const x = new Float32Array(256);
  for (let i = 0; i < 256; i++) x[i] = -1 + (2 * i) / 255;
  for (const [name, type, write] of WRITERS) {
    const y = dequantize(type, write(x), 256);
    const sub = name.endsWith("_K") ? 16 : 32;
    for (let i = 1; i < 256; i++) {
      if (i % sub === 0) continue;
      assert.ok(y[i] >= y[i - 1] - 1e-6, `${name}: column ${i} decodes to ${y[i]} < column ${i - 1}'s ${y[i - 1]}`);
    }
    const e = relRms(x, y);
    assert.ok(e < 0.25, `${name}: ramp error ${e}`);
  }
});
