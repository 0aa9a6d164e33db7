// quantizeWeight widens bf16 / f16 matrices a block of rows at a time; every scheme is per row, so the result must
// equal the whole-matrix quantizers on the f32 copy, byte for byte.
import { test } from "node:test";
import assert from "node:assert/strict";
import { quantizeWeight, quantizeQ8Row, quantizeQ4Row, quantizeQ4Group } from "../../src/quant/quantize.js";
import { toFloat32, f32ToBf16, f32ToF16, type Tensor } from "../../src/tensor.js";
import { rng } from "../helpers/rng.js";

test("blocked quantization of bf16 / f16 equals whole-matrix quantization (int8, int4 row, int4 group 32)", () => {
  const next = rng(11);
  for (const [rows, cols] of [[2100, 1024], [300, 5504], [5, 64]]) {
    for (const dtype of ["bf16", "f16"] as const) {
      const data = new Uint16Array(rows * cols);
      for (let i = 0; i < data.length; i++) data[i] = (dtype === "bf16" ? f32ToBf16 : f32ToF16)((next() - 0.5) * 0.2);
      const t: Tensor = { dtype, shape: [rows, cols], data };
      const w = toFloat32(t);
      const cases = [
        [8, 0, quantizeQ8Row(w, rows, cols)],
        [4, 0, quantizeQ4Row(w, rows, cols)],
        [4, 32, quantizeQ4Group(w, rows, cols, 32)],
      ] as const;
      for (const [bits, group, want] of cases) {
        const got = quantizeWeight(t, bits, group);
        const what = `${rows}x${cols} ${dtype} int${bits} g${group}`;
        assert.equal(got.format, want.format, what);
        assert.equal(got.rows, rows, what);
        assert.equal(got.groupSize, want.groupSize, what);
        assert.deepEqual(got.data, want.data, what);
        assert.deepEqual(got.scales, want.scales, what);
      }
    }
  }
});
