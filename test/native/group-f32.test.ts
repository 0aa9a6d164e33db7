/**
 * q4_group / q8_group weights marked `activations: "f32"` (GPTQ / AWQ) on the native backend: every ISA keeps
 * the activations in f32, so the result is the TS reference's up to f32 summation order (≤ 1e-5 normalized).
 * On x86 with AVX2 the group_f32_avx2.cc kernels run them (groups of whole 32-column units): the decode streams
 * (T < 10, up to 3 tokens per pass: de-interleaved x, unsigned nibbles with a −8·Σx correction per group) and the
 * packed GEMM (T ≥ 10: 16-row panels of 256 columns, 6-token tiles). The shapes cover partial panels (rows 37,
 * 70), a partial column chunk (cols 384 = 256 + 128), pass and tile tails (T = 1, 2, 3, 4, 7, 13, 17, 40), group
 * 32 / 64 / 128, zero points and desc_act order.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Weight } from "../../src/backend/backend.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { tryLoadNativeBackend, type NativeIsa } from "../../src/backend/native/index.js";
import { normErr, randArray, randWeight, rng, randPerm } from "./random.js";

const load = tryLoadNativeBackend({ threads: 2 });
const nb = load.backend;
const skip = nb ? false : `native addon not available: ${load.reason}`;
const isas = (nb?.supportedIsas ?? []) as NativeIsa[];

const SHAPES: { rows: number; cols: number; group: number }[] = [
  { rows: 37, cols: 384, group: 128 },
  { rows: 70, cols: 256, group: 32 },
  { rows: 16, cols: 192, group: 64 },
];

test("f32-activation q4_group / q8_group (GPTQ / AWQ) = TS reference within 1e-5 on every ISA: decode, prefill tiles, zero points, desc_act", { skip }, () => {
  const r = rng(2024);
  const worst: Record<string, number> = {};
  try {
    for (const isa of isas) {
      nb!.setIsa(isa);
      for (const format of ["q4_group", "q8_group"] as const) {
        for (const { rows, cols, group } of SHAPES) {
          for (const extras of ["none", "mins", "mins+perm"] as const) {
            const base = randWeight(format, rows, cols, r, group);
            const w: Weight = { ...base, activations: "f32" };
            if (extras !== "none") w.mins = randArray(base.scales!.length, r, 0.01);
            if (extras === "mins+perm") w.perm = randPerm(cols, r);
            const prepared = nb!.prepareWeight ? nb!.prepareWeight(w) : w;
            for (const T of [1, 2, 3, 4, 7, 13, 17, 40]) {
              const x = randArray(T * cols, r);
              const ref = new Float32Array(T * rows), got = new Float32Array(T * rows);
              tsBackend.matmul(ref, x, w, T);
              nb!.matmul(got, x, prepared, T);
              const e = normErr(got, ref);
              const key = `${isa} ${format}`;
              worst[key] = Math.max(worst[key] ?? 0, e);
              assert.ok(e <= 1e-5, `${isa} ${format} [${rows}, ${cols}] group ${group} ${extras} T=${T}: ${e}`);
            }
          }
        }
      }
    }
  } finally {
    nb!.setIsa(isas[isas.length - 1]);
  }
  console.log(Object.entries(worst).map(([k, v]) => `${k}: ${v.toExponential(2)}`).join("\n"));
});
