/**
 * GPTQ / AWQ weights on the native backend (native/src/group_zp.cc) vs the TS twin: q4_group with zero points
 * (`mins`) and a desc_act column order (`perm`), and q8_group, on every instruction set this CPU has.
 *
 * Bounds (normalized: max|Δ| / max|ref|), as test/native/matmul.test.ts states them:
 * - f32 paths (q8_group except AMX prefill; q4_group on scalar and avx512): 1e-5 against the TS reference.
 * - AMX prefill (T ≥ 16, rows % 16 = 0, group % 32 = 0) quantizes the activations for q8_group too.
 * - q4_group on avx2 (below 10 tokens, or groups that are not whole 32-column units; from 10 tokens the packed
 *   f32 GEMM of group_f32_avx2.cc runs it exactly) / avx512_vnni / avx512_amx quantizes the activations to int8 per 32 stored columns (llama.cpp's
 *   Q8_0 rule) for the q·scale part; the zero-point term Σ_g min·Σx is added in f32 from the unquantized x. The
 *   same-rounding reference does exactly that (x gathered into stored order, quantized, dotted with q·scale, plus
 *   the f32 min term): 1e-5; against the plain reference: 1e-1 (measured up to 6.5e-2 with 19 rows at T = 1: the
 *   normalizer max|ref| is small).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Weight } from "../../src/backend/backend.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { loadAddon } from "../../src/backend/native/addon.js";
import { tryLoadNativeBackend, type NativeIsa } from "../../src/backend/native/index.js";
import { avx2GemmTakes, quantizeActsQ8_0 as quantizeActs } from "./act-quant.js";
import { normErr, randArray, randWeight, rng, randPerm } from "./random.js";

const load = tryLoadNativeBackend({ threads: 2 });
const nb = load.backend;
const skip = nb ? false : `native addon not available: ${load.reason}`;
const isas = (nb?.supportedIsas ?? []) as NativeIsa[];

const FLOAT_BOUND = 1e-5;
const QUANT_ACT_BOUND = 1e-1;

function gather(x: Float32Array, T: number, cols: number, perm: Int32Array | undefined): Float32Array {
  if (!perm) return x;
  const out = new Float32Array(x.length);
  for (let t = 0; t < T; t++) for (let j = 0; j < cols; j++) out[t * cols + j] = x[t * cols + perm[j]];
  return out;
}

/** The int-activation path's spec: quantized gathered x · (q·scale)ᵀ + Σ_g min · Σ_{k∈g} x (f32, unquantized). */
function sameRoundingRef(w: Weight, x: Float32Array, T: number): Float32Array {
  const { rows, cols } = w;
  const g = w.groupSize!, ng = cols / g;
  const xg = gather(x, T, cols, w.perm);
  const y = new Float32Array(T * rows);
  tsBackend.matmul(y, quantizeActs(xg, T, cols), { ...w, mins: undefined, perm: undefined }, T);
  if (w.mins) {
    for (let t = 0; t < T; t++) {
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let q = 0; q < ng; q++) {
          let xs = 0;
          for (let k = 0; k < g; k++) xs += xg[t * cols + q * g + k];
          s += w.mins[r * ng + q] * xs;
        }
        y[t * rows + r] += s;
      }
    }
  }
  return y;
}

/** Whether q4_group runs on int8 activations: x86 AVX2 / VNNI; arm64 sdot / smmla for group 32, 64 or k·128. */
const intActs = (isa: NativeIsa, group: number) =>
  isa === "avx2" || isa === "avx512_vnni" || isa === "avx512_amx" ||
  ((isa === "neon_dotprod" || isa === "neon_i8mm") && (group === 32 || group === 64 || group % 128 === 0));
/** Whether the AMX kernel takes this case (matmul_amx.cc's amx_group). */
const amxTakes = (c: Case, T: number, isa: NativeIsa) => isa === "avx512_amx" && T >= 16 && c.rows % 16 === 0 && c.group % 32 === 0;

interface Case { format: "q4_group" | "q8_group"; rows: number; cols: number; group: number; mins: boolean; perm: boolean }

function makeWeight(c: Case, r: () => number): Weight {
  const w = randWeight(c.format, c.rows, c.cols, r, c.group);
  if (c.mins) w.mins = randArray(w.scales!.length, r, 0.05);
  if (c.perm) w.perm = randPerm(c.cols, r);
  return w;
}

function runCase(c: Case, T: number, isa: NativeIsa, seed: number): void {
  const r = rng(seed);
  const w = makeWeight(c, r);
  const x = randArray(T * c.cols, r);
  const ref = new Float32Array(T * c.rows);
  tsBackend.matmul(ref, x, w, T);
  nb!.setIsa(isa);
  const got = new Float32Array(T * c.rows).fill(NaN);
  nb!.matmul(got, x, nb!.prepareWeight!(w), T);
  const name = `${isa} ${c.format}/g${c.group}${c.mins ? "+mins" : ""}${c.perm ? "+perm" : ""} [${c.rows}x${c.cols}] T=${T}`;
  const gemm = isa === "avx2" && avx2GemmTakes(c.format, c.cols, c.group, T); // f32 GEMM: exact
  if ((c.format === "q4_group" && intActs(isa, c.group) && !gemm) || amxTakes(c, T, isa)) {
    const errQ = normErr(got, sameRoundingRef(w, x, T));
    assert.ok(errQ <= FLOAT_BOUND, `${name}: err vs same-rounding reference ${errQ} > ${FLOAT_BOUND}`);
    const err = normErr(got, ref);
    assert.ok(err <= QUANT_ACT_BOUND, `${name}: err vs f32 ${err} > ${QUANT_ACT_BOUND}`);
  } else {
    const err = normErr(got, ref);
    assert.ok(err <= FLOAT_BOUND, `${name}: err ${err} > ${FLOAT_BOUND}`);
  }
}

const cases: Case[] = [];
for (const format of ["q4_group", "q8_group"] as const) {
  // group 16 (the fixtures), 32 (AMX / g32 kernels at 128-multiples), 128 (the releases), 8 and 4 (fallbacks)
  for (const [group, cols] of [[16, 48], [16, 128], [32, 384], [128, 256], [8, 40], ...(format === "q8_group" ? [[4, 12]] : [])]) {
    for (const [mins, perm] of [[true, false], [false, true], [true, true]]) cases.push({ format, rows: 19, cols, group, mins, perm });
  }
}

test("GPTQ / AWQ weights: native = TS twin on every ISA (mins, perm, q8_group), T = 1, 3, 17", { skip }, () => {
  let seed = 100;
  for (const isa of isas) for (const c of cases) for (const T of [1, 3, 17]) runCase(c, T, isa, seed++);
  nb!.setIsa(isas[isas.length - 1]);
});

test("GPTQ / AWQ weights: larger shapes across threads (prefill tile of 32 tokens, AMX-sized)", { skip }, () => {
  const best = isas[isas.length - 1];
  for (const format of ["q4_group", "q8_group"] as const) {
    for (const T of [1, 32]) runCase({ format, rows: 256, cols: 1024, group: 128, mins: true, perm: true }, T, best, 900 + T);
    runCase({ format, rows: 128, cols: 512, group: 32, mins: true, perm: false }, 32, best, 950);
  }
});

test("TS twin: decodeRow puts stored column j at input column perm[j] and adds the group's min", () => {
  const w: Weight = {
    format: "q8_group", rows: 1, cols: 4, groupSize: 2,
    data: Int8Array.from([1, -2, 3, 4]), scales: Float32Array.from([0.5, 2]), mins: Float32Array.from([10, -1]),
    perm: Int32Array.from([2, 0, 3, 1]),
  };
  // stored values: 1·0.5+10, −2·0.5+10, 3·2−1, 4·2−1 = 10.5, 9, 5, 7 → input columns 2, 0, 3, 1
  const y = new Float32Array(1);
  tsBackend.matmul(y, Float32Array.from([1, 10, 100, 1000]), w, 1);
  assert.equal(y[0], 9 * 1 + 7 * 10 + 10.5 * 100 + 5 * 1000);
});

test("native: bad mins / perm are rejected before a kernel runs", { skip }, () => {
  const a = loadAddon();
  assert.ok(a.addon);
  const rows = 2, cols = 32, group = 16;
  const data = new Uint8Array((rows * cols) / 2), scales = new Float32Array((rows * cols) / group);
  const y = new Float32Array(rows), x = new Float32Array(cols);
  const perm = Int32Array.from({ length: cols }, (_, i) => i);
  perm[5] = cols; // out of range
  assert.throws(() => a.addon!.matmul(y, x, 5, data, scales, rows, cols, group, 1, null, perm), /perm: entry 5/);
  assert.throws(() => a.addon!.matmul(y, x, 5, data, scales, rows, cols, group, 1, null, new Int32Array(3)), /perm: length/);
  assert.throws(() => a.addon!.matmul(y, x, 5, data, scales, rows, cols, group, 1, new Float32Array(1), null), /mins: length/);
  assert.throws(() => a.addon!.matmul(y, x, 0, new Float32Array(rows * cols), null, rows, cols, 0, 1, new Float32Array(4), null), /mins \/ perm need/);
  const w: Weight = { format: "q4_group", rows, cols, data, scales, groupSize: group, perm: new Int32Array(cols) };
  assert.throws(() => nb!.prepareWeight!(w), /perm is not a permutation/);
  assert.throws(() => nb!.prepareWeight!({ ...w, perm: undefined, mins: new Float32Array(1) }), /mins must be a Float32Array of 4/);
});
