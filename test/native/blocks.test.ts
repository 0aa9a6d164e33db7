/**
 * Native legacy-block matmul (q4_0, q4_1, q5_0, q5_1, q8_0 stored as in GGUF; native/src/blocks*.cc) vs
 * references built from src/gguf/quants.ts's dequantize (ggml's dequantization), every ISA the CPU has.
 *
 * The kernels quantize x Q8_0-style (per 32 columns: d = max|x| / 127, q = x · (127 / max|x|) in f32 rounded
 * half to even) and take exact integer dot products per block. Bounds, normalized (max|Δ| / max|ref|):
 * - vs the f32 product of dequant(W) with the SAME quantize-dequantized x: 1e-5 (only where d_w · d_x is rounded
 *   and the float summation order differ);
 * - vs the plain f32 product (the spec), relative to max_r Σ_c |W_rc · x_c| (a single dot may cancel to ~0, so
 *   max|ref| is no scale for it): 2e-2 (the cost of 8-bit activations; ~4e-3 seen here).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Weight } from "../../src/backend/backend.js";
import { tryLoadNativeBackend, type NativeIsa } from "../../src/backend/native/index.js";
import { BLOCK_GEOMETRY, type BlockFormat } from "../../src/backend/ts/blocks.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { dequantize } from "../../src/gguf/quants.js";
import { GGML } from "../../src/gguf/types.js";
import { quantizeActsQ8_0 } from "./act-quant.js";
import { normErr, randArray, randBlockWeight, rng } from "./random.js";

const load = tryLoadNativeBackend({ threads: 2 });
const nb = load.backend;
const skip = nb ? false : `native addon not available: ${load.reason}`;
const isas = (nb?.supportedIsas ?? []).filter((i) => i !== "avx512_amx") as NativeIsa[];

const SAME_ACT_BOUND = 1e-5;
const F32_BOUND = 2e-2;

const LEGACY: [BlockFormat, number][] = [
  ["q4_0", GGML.Q4_0], ["q4_1", GGML.Q4_1], ["q5_0", GGML.Q5_0], ["q5_1", GGML.Q5_1], ["q8_0", GGML.Q8_0],
];

/** y (T, rows) = x · Wᵀ in f64 over W = dequantize(type, blocks) (the independent oracle: gguf/quants.ts). */
function refMatmul(w: Weight, type: number, x: Float32Array, T: number): Float32Array {
  const W = dequantize(type, w.data as Uint8Array, w.rows * w.cols);
  const y = new Float32Array(T * w.rows);
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < w.rows; r++) {
      let s = 0;
      for (let c = 0; c < w.cols; c++) s += x[t * w.cols + c] * W[r * w.cols + c];
      y[t * w.rows + r] = s;
    }
  }
  return y;
}

/** max|got − ref| / max_r Σ_c |W_rc · x_c|. */
function errVsMagnitude(got: Float32Array, ref: Float32Array, w: Weight, type: number, x: Float32Array, T: number): number {
  const W = dequantize(type, w.data as Uint8Array, w.rows * w.cols);
  let mag = 0, md = 0;
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < w.rows; r++) {
      let s = 0;
      for (let c = 0; c < w.cols; c++) s += Math.abs(x[t * w.cols + c] * W[r * w.cols + c]);
      mag = Math.max(mag, s);
      md = Math.max(md, Math.abs(got[t * w.rows + r] - ref[t * w.rows + r]));
    }
  }
  return Number.isNaN(md) ? Infinity : md / mag;
}

// Column counts cover the VNNI kernel's paths: a lone partial 4-block step (32, 64, 96), whole steps + a partial
// one (160), whole 16-block groups (512, 4096), a group + whole steps + a partial step (736 = 23 blocks) and a
// group + whole steps only (768 = 24 blocks). The rows-as-lanes prefill kernels (AVX2, from 4 tokens) take whole
// groups of 8 rows (q8_0 from 24 tokens: 32, then 16, then 8) out of a thread's chunk of rows, which is 4 rows in
// the shapes above (2 threads) before blocks.cc gave prompts chunks of 32 rows. Small products run on the calling
// thread: [57, 32] up to 35 tokens (groups of 32, 16, 8 and one row left), [41, 64] at 24 (32, 8, 1); [264, 64] and
// [520, 32] run in chunks of 32 rows and a last one of 8.
const SHAPES: [number, number][] = [[1, 32], [7, 64], [33, 96], [5, 160], [64, 512], [13, 4096], [3, 736], [6, 768], [57, 32], [41, 64], [264, 64], [520, 32]];
// Token counts: decode (1), the small-T tiles (2 … 15, partial 4-token tiles), prefill past a 32-token block, and
// AVX2 q8_0's int16 kernel (from 24 tokens) with partial token tiles (25) and a second 128-token chunk (130).
const TOKENS = [1, 2, 3, 5, 15, 17, 24, 25, 64, 130];

for (const [fmt, type] of LEGACY) {
  test(`blocks: ${fmt} TS twin = gguf dequantize + f32 dot`, () => {
    const r = rng(7);
    for (const [rows, cols] of SHAPES.slice(0, 5)) {
      const w = randBlockWeight(fmt, rows, cols, r);
      for (const T of [1, 3]) {
        const x = randArray(T * cols, r);
        const y = new Float32Array(T * rows);
        tsBackend.matmul(y, x, w, T);
        const e = normErr(y, refMatmul(w, type, x, T));
        assert.ok(e <= 1e-6, `${fmt} [${rows}, ${cols}] T=${T}: ${e}`);
      }
    }
  });

  test(`blocks: ${fmt} native vs same-rounded-activation reference, every ISA`, { skip }, () => {
    const r = rng(11);
    for (const isa of isas) {
      nb!.setIsa(isa);
      for (const [rows, cols] of SHAPES) {
        // unprepared: prepareWeight repacks q4_0 into q4_group (test/gguf/weights.test.ts); these are the block kernels
        const w = randBlockWeight(fmt, rows, cols, r);
        for (const T of TOKENS) {
          if (rows * cols * T > 4e6) continue;
          const x = randArray(T * cols, r);
          const y = new Float32Array(T * rows).fill(NaN);
          nb!.matmul(y, x, w, T);
          const same = normErr(y, refMatmul(w, type, quantizeActsQ8_0(x, T, cols), T));
          assert.ok(same <= SAME_ACT_BOUND, `${fmt} ${isa} [${rows}, ${cols}] T=${T}: ${same} vs same-activation ref`);
          const plain = errVsMagnitude(y, refMatmul(w, type, x, T), w, type, x, T);
          assert.ok(plain <= F32_BOUND, `${fmt} ${isa} [${rows}, ${cols}] T=${T}: ${plain} vs f32 ref`);
        }
      }
    }
    nb!.setIsa(isas[isas.length - 1]);
  });
}

test("blocks: edge activations — zeros, one huge value per block, a block of denormal-sized values", { skip }, () => {
  const rows = 3, cols = 1024;
  for (const [fmt, type] of LEGACY) {
    const w = randBlockWeight(fmt, rows, cols, rng(5));
    const W = dequantize(type, w.data as Uint8Array, rows * cols);
    for (const isa of isas) {
      nb!.setIsa(isa);
      const pw = w; // the block kernels (prepareWeight would repack q4_0)
      const y = new Float32Array(rows).fill(NaN);
      nb!.matmul(y, new Float32Array(cols), pw, 1);
      assert.deepEqual(Array.from(y), [0, 0, 0], `${fmt} ${isa}: x = 0`);
      // one non-zero value per block quantizes exactly (q = ±127, d = |x| / 127)
      const x = new Float32Array(cols);
      for (let b = 0; b < cols; b += 32) x[b + (b % 31)] = (b % 64 ? -1 : 1) * (1 + b);
      nb!.matmul(y, x, pw, 1);
      const ref = new Float32Array(rows);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) ref[r] += x[c] * W[r * cols + c];
      assert.ok(normErr(y, ref) <= SAME_ACT_BOUND, `${fmt} ${isa}: sparse x ${normErr(y, ref)}`);
      // 127 / amax overflows for amax < ~1e-37: such a block quantizes to zeros instead of NaN / garbage
      x.fill(0).fill(1e-38, 0, 32);
      nb!.matmul(y, x, pw, 1);
      assert.deepEqual(Array.from(y), [0, 0, 0], `${fmt} ${isa}: tiny x`);
    }
  }
  nb!.setIsa(isas[isas.length - 1]);
});

test("blocks: embedRow decodes one row of a block table (TS and native agree with dequantize)", () => {
  const r = rng(3);
  for (const [fmt, type] of LEGACY) {
    const w = randBlockWeight(fmt, 9, 64, r);
    const W = dequantize(type, w.data as Uint8Array, 9 * 64);
    for (const be of nb ? [tsBackend, nb] : [tsBackend]) {
      const out = new Float32Array(64);
      be.embedRow(out, w, 5);
      assert.deepEqual(out, W.subarray(5 * 64, 6 * 64), `${fmt} ${be.name}`);
    }
    assert.throws(() => tsBackend.embedRow(new Float32Array(64), w, 9), /outside the table's 9 rows/);
  }
});

test("blocks: bad block weights are rejected with the shape and what to do", { skip }, () => {
  const w = randBlockWeight("q4_0", 4, 64, rng(1));
  assert.throws(() => nb!.prepareWeight!({ ...w, cols: 48 }), /whole blocks of 32 values, but it has 48 columns/);
  assert.throws(() => nb!.prepareWeight!({ ...w, data: (w.data as Uint8Array).subarray(1) }), /needs 144 bytes of blocks, has 143/);
  assert.throws(() => nb!.prepareWeight!({ ...w, data: new Int8Array(144) }), /must be a Uint8Array of raw blocks/);
  assert.throws(() => tsBackend.prepareWeight!({ ...w, rows: 5 }), /q4_0 \[5, 64\] needs 180 bytes/);
});

test("blocks: geometry matches gguf/types.ts", async () => {
  const { GGML_TYPES } = await import("../../src/gguf/types.js");
  for (const [fmt, type] of LEGACY) {
    const t = GGML_TYPES.get(type)!;
    const { values, bytes } = BLOCK_GEOMETRY[fmt];
    assert.deepEqual({ values, bytes }, { values: t.blockSize, bytes: t.typeSize }, fmt);
  }
});
