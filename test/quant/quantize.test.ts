import { test } from "node:test";
import assert from "node:assert/strict";
import {
  dequantize, getNibble, quantizeQ4Group, quantizeQ4Row, quantizeQ8Row, quantizeWeight, roundHalfEven,
} from "../../src/quant/quantize.js";
import { weightFromTensors, weightToTensors, isQuantizedProjection } from "../../src/quant/disk.js";
import { f32ToBf16 } from "../../src/tensor.js";
import type { Weight } from "../../src/backend/backend.js";
import { XverseError } from "../../src/errors.js";

/** Deterministic N(0,1)-ish values with a few outliers, so scales vary across rows and groups. */
function randomMatrix(rows: number, cols: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const next = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 4294967296; };
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < w.length; i++) {
    const u = next() + next() + next() + next() - 2; // roughly normal
    w[i] = next() < 0.01 ? u * 20 : u;
  }
  return w;
}

/** The scale that applies to element (r, c) of a quantized weight. */
function scaleAt(w: Weight, r: number, c: number): number {
  if (w.format === "q4_group") return w.scales![r * (w.cols / w.groupSize!) + Math.floor(c / w.groupSize!)];
  return w.scales![r];
}

function checkBound(w: Weight, x: Float32Array): void {
  const deq = dequantize(w);
  for (let r = 0; r < w.rows; r++) {
    for (let c = 0; c < w.cols; c++) {
      const i = r * w.cols + c;
      const s = scaleAt(w, r, c);
      // half a step, plus f32 rounding of the product
      assert.ok(Math.abs(x[i] - deq[i]) <= s / 2 + 1e-6 * Math.abs(x[i]), `(${r},${c}): ${x[i]} vs ${deq[i]}, scale ${s}`);
    }
  }
}

test("round half to even, like torch.round", () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, -2.6, 3].map(roundHalfEven), [0, 2, 2, -0, -2, -2, 2, -3, 3]);
});

test("int8 per row: scale = max|row|/127 and |w − deq| ≤ scale/2", () => {
  const x = randomMatrix(17, 40, 1);
  const w = quantizeQ8Row(x, 17, 40);
  assert.equal(w.format, "q8_row");
  for (let r = 0; r < 17; r++) {
    let amax = 0;
    for (let c = 0; c < 40; c++) amax = Math.max(amax, Math.abs(x[r * 40 + c]));
    assert.equal(w.scales![r], Math.fround(amax / 127));
    // the largest value maps to ±127
    const q = w.data as Int8Array;
    assert.equal(Math.max(...Array.from(q.subarray(r * 40, r * 40 + 40), Math.abs)), 127);
  }
  checkBound(w, x);
});

test("int4 per row and group-wise: |w − deq| ≤ scale/2, values in [-7, 7]", () => {
  const x = randomMatrix(9, 128, 2);
  const row = quantizeQ4Row(x, 9, 128);
  assert.equal(row.data.length, 9 * 64);
  checkBound(row, x);
  for (const g of [32, 64, 128]) {
    const grp = quantizeQ4Group(x, 9, 128, g);
    assert.equal(grp.scales!.length, 9 * (128 / g));
    checkBound(grp, x);
    for (let r = 0; r < 9; r++) for (let c = 0; c < 128; c++) {
      const q = getNibble(grp.data as Uint8Array, r * 64, c);
      assert.ok(q >= -7 && q <= 7);
    }
  }
  // group-wise is never worse than per row on the same matrix
  const err = (w: Weight) => dequantize(w).reduce((a, v, i) => a + (v - x[i]) ** 2, 0);
  assert.ok(err(quantizeQ4Group(x, 9, 128, 32)) < err(row));
});

test("int4 packing matches backend.ts: low nibble = even column, two's complement", () => {
  const x = new Float32Array([7, -7, 1, -1, 0, 3, -4, 2]); // max 7 → scale 1, integers are the values
  const w = quantizeQ4Row(x, 1, 8);
  assert.equal(w.scales![0], 1);
  assert.deepEqual(Array.from(w.data as Uint8Array), [0x97, 0xf1, 0x30, 0x2c]);
});

test("values on the quantization grid are reconstructed exactly", () => {
  // Integers times a power-of-two step, the row's max hitting ±qmax: q·scale is exact in f32.
  const step = 0.03125;
  for (const [bits, qmax] of [[8, 127], [4, 7]] as const) {
    const rows = 4, cols = 64;
    const x = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      x[r * cols + c] = c === 0 ? qmax * step * (r % 2 ? -1 : 1) : (((r * 7 + c * 13) % (2 * qmax + 1)) - qmax) * step;
    }
    const w = bits === 8 ? quantizeQ8Row(x, rows, cols) : quantizeQ4Row(x, rows, cols);
    assert.deepEqual(dequantize(w), x, `int${bits}`);
    // and dequantize → quantize is a fixed point
    const again = bits === 8 ? quantizeQ8Row(dequantize(w), rows, cols) : quantizeQ4Row(dequantize(w), rows, cols);
    assert.deepEqual(again.data, w.data);
  }
});

test("all-zero rows and groups get scale 0 and dequantize to 0", () => {
  const x = new Float32Array(2 * 64);
  x.fill(1, 64 + 32); // second row, second group only
  const g = quantizeQ4Group(x, 2, 64, 32);
  assert.deepEqual(Array.from(g.scales!), [0, 0, 0, 1 / 7].map(Math.fround));
  assert.deepEqual(dequantize(g).subarray(0, 64 + 32), new Float32Array(96));
  assert.deepEqual(dequantize(quantizeQ8Row(x, 2, 64)).subarray(0, 64), new Float32Array(64));
});

test("quantizeWeight takes f32 / bf16 tensors and rejects bad requests with clear errors", () => {
  const x = randomMatrix(8, 64, 3);
  const bf = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) bf[i] = f32ToBf16(x[i]);
  const fromBf = quantizeWeight({ dtype: "bf16", shape: [8, 64], data: bf }, 4, 32);
  assert.equal(fromBf.format, "q4_group");
  assert.equal(fromBf.groupSize, 32);
  assert.equal(quantizeWeight({ dtype: "f32", shape: [8, 64], data: x }, 8).format, "q8_row");
  assert.throws(() => quantizeWeight({ dtype: "f32", shape: [8, 64], data: x }, 4, 48), (e: unknown) => e instanceof XverseError && /divide/.test(e.message));
  assert.throws(() => quantizeWeight({ dtype: "f32", shape: [8, 64], data: x }, 8, 32), XverseError);
  assert.throws(() => quantizeWeight({ dtype: "f32", shape: [512], data: x }, 8), XverseError);
  const bad = x.slice(); bad[5] = NaN;
  assert.throws(() => quantizeWeight({ dtype: "f32", shape: [8, 64], data: bad }, 8), /NaN/);
});

test("on-disk tensors round-trip to the same Weight", () => {
  const x = randomMatrix(6, 64, 4);
  const cases: [Weight, { bits: 4 | 8; groupSize: number }][] = [
    [quantizeQ8Row(x, 6, 64), { bits: 8, groupSize: 0 }],
    [quantizeQ4Row(x, 6, 64), { bits: 4, groupSize: 0 }],
    [quantizeQ4Group(x, 6, 64, 32), { bits: 4, groupSize: 32 }],
  ];
  for (const [w, spec] of cases) {
    const { weight, scale } = weightToTensors(w);
    assert.equal(weight.dtype, "i8");
    assert.equal(scale.dtype, "f32");
    const back = weightFromTensors(weight, scale, spec, "model.layers.0.mlp.up_proj.weight");
    assert.equal(back.format, w.format);
    assert.equal(back.rows, w.rows);
    assert.equal(back.cols, w.cols);
    assert.deepEqual(Buffer.from(back.data.buffer, back.data.byteOffset, back.data.byteLength),
      Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength));
    assert.deepEqual(back.scales, w.scales);
    assert.equal(back.groupSize, w.groupSize);
  }
  const { weight, scale } = weightToTensors(cases[2][0]);
  assert.throws(() => weightFromTensors(weight, scale, { bits: 4, groupSize: 0 }, "w"), /w_scale: expected shape \[6\]/);
});

test("the seven projections are the quantized tensors", () => {
  for (const p of ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]) {
    assert.ok(isQuantizedProjection(`model.layers.12.${p}.weight`), p);
  }
  for (const n of ["model.embed_tokens.weight", "lm_head.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight",
    "model.layers.0.self_attn.q_proj.weight_scale", "model.layers.0.self_attn.rotary_emb.inv_freq"]) {
    assert.ok(!isQuantizedProjection(n), n);
  }
});
