/**
 * Native matmul vs the TS reference, every weight format × every instruction set the CPU has × odd shapes.
 *
 * Bounds (normalized: max|Δ| / max|ref|):
 * - f32 accumulation paths (f32, bf16, f16 always; q8_row on scalar and avx512, in decode on avx512_vnni, and on
 *   avx2 at 2-3 tokens or without whole 32-column blocks; int4 on scalar and avx512): 1e-5 — only the
 *   summation order differs from the reference.
 * - int4 weights on avx512_vnni and avx2 (on avx2 from 10 tokens group_f32_avx2.cc's packed f32 GEMM runs q4 rows
 *   and groups other than group 32 exactly), int8 (q8_row) weights on avx2 in decode and from 4 tokens
 *   (avx2Q8RowsTakes), and q8_row in prefill (T > 1) on avx512_vnni
 *   when the CPU also has AVX-512 VBMI, integer dot products: activations are quantized to int8 in
 *   blocks of 32 (llama.cpp's Q8_0 scheme: scale = max|x| / 127, q = x · (127 / max|x|) rounded half to
 *   even). Two checks: against the reference run on the same quantize-dequantized x, 1e-5 (the kernel itself
 *   is exact); against the plain reference, 5e-2 (the cost of quantizing activations: ~1-2e-2 on these
 *   uniform random inputs, printed by the "worst" test).
 * - arm64 neon_dotprod / neon_i8mm (sdot / smmla): the same int8 activations for q8_row and q4_row at any T and
 *   q4_group with group 32, 64 or a multiple of 128 (groups 8 / 16 keep the exact f32 path there); same two checks.
 * - arm64 neon_dotprod / neon_i8mm on a CPU with FEAT_FHM (FMLAL): f16 weights times x rounded to f16 (per token
 *   scaled by a power of two, max|x| into [2^14, 2^15)), f32 accumulation: 1e-5 against the reference on that
 *   rounded x, 2e-3 against the plain reference (native/src/arm/matmul_fhm.cc).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Weight, WeightFormat } from "../../src/backend/backend.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { tryLoadNativeBackend, type NativeIsa } from "../../src/backend/native/index.js";
import { readFileSync } from "node:fs";
import { avx2GemmTakes, avx2Q8RowsTakes, quantizeActsQ8_0, rint } from "./act-quant.js";
import { normErr, randArray, randWeight, rng } from "./random.js";

const load = tryLoadNativeBackend({ threads: 2 });
const nb = load.backend;
const skip = nb ? false : `native addon not available: ${load.reason}`;
const isas = (nb?.supportedIsas ?? []) as NativeIsa[];

const FLOAT_BOUND = 1e-5;
const QUANT_ACT_BOUND = 5e-2;
const F16_ACT_BOUND = 2e-3;

interface Case {
  format: WeightFormat;
  rows: number;
  cols: number;
  group?: number;
}

const cases: Case[] = [];
for (const format of ["f32", "bf16", "f16", "q8_row"] as const) {
  for (const [rows, cols] of [[1, 1], [7, 37], [5, 64], [13, 130], [33, 200], [9, 1000], [6, 4099]]) {
    cases.push({ format, rows, cols });
  }
}
// AVX2 q8_row from 4 tokens (q8_0's int16 kernel): a 32-row group, an 8-row group and one row padded to 8 (T = 70);
// its decode with an odd number of 32-column blocks (the last one alone)
cases.push({ format: "q8_row", rows: 41, cols: 64 }, { format: "q8_row", rows: 3, cols: 96 });
for (const [rows, cols] of [[1, 2], [7, 38], [5, 64], [13, 130], [33, 200], [9, 1000], [6, 4098]]) {
  cases.push({ format: "q4_row", rows, cols });
}
// group sizes: 8 and 16 exercise the fallbacks, 32/64/128/256 the fast paths; cols ≠ multiple of 128 the tails;
// group 32 with 640 / 1152 / 5504 columns: the 512-column prefill kernel with a partial last block
// groups 8 / 16 / 64 with 256 / 512 / 1024 columns: AVX2 int4's plain scale loads (8 scales inside the row) too
for (const [group, cols] of [[8, 40], [8, 256], [16, 48], [16, 512], [32, 160], [32, 640], [32, 1152], [32, 4096], [32, 5504], [64, 320], [64, 1024], [128, 384], [128, 640], [256, 768]]) {
  cases.push({ format: "q4_group", rows: 11, cols, group });
}

/** Whether the CPU has AVX-512 VBMI (the int8 VNNI prefill needs it); undefined where /proc/cpuinfo is absent. */
const hasVbmi: boolean | undefined = (() => {
  try {
    return /\bavx512vbmi\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
  } catch {
    return undefined;
  }
})();

/** arm64 sdot / smmla levels: q8_row and q4_row at any T, q4_group with group 32, 64 or k·128 (native/src/arm/intq.inc). */
const armIntActs = (isa: NativeIsa, format: WeightFormat, group?: number): boolean =>
  (isa === "neon_dotprod" || isa === "neon_i8mm") &&
  (format === "q8_row" || format === "q4_row" || (format === "q4_group" && (group === 32 || group === 64 || (group ?? 0) % 128 === 0)));

/** Whether the arm64 CPU has FEAT_FHM (Linux: asimdfhm in /proc/cpuinfo; macOS arm64: every Apple M chip). */
const hasFhm: boolean =
  process.arch === "arm64" &&
  (process.platform === "darwin" ||
    (() => {
      try {
        return /\basimdfhm\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
      } catch {
        return false;
      }
    })());

/** arm64 neon_dotprod / neon_i8mm with FHM: f16 weights on f16-rounded activations (native/src/arm/matmul_fhm.cc). */
const armF16Acts = (isa: NativeIsa, format: WeightFormat): boolean =>
  hasFhm && (isa === "neon_dotprod" || isa === "neon_i8mm") && format === "f16";

/** ⌊log2 a⌋ for a > 0, exact (Math.log2 may round across a power of two). */
function ilog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  return e;
}

/** f32 → nearest f16 value (ties to even); |v| < 2^15 here, so no overflow. */
function f16Round(v: number): number {
  const a = Math.abs(v);
  if (a === 0 || !Number.isFinite(a)) return v;
  const e = ilog2(a);
  const ulp = 2 ** (Math.max(e, -14) - 10); // below 2^-14: the subnormals' fixed 2^-24
  return rint(v / ulp) * ulp;
}

/** x (T, cols) as the FHM path rounds it: per token scaled by 2^-k (max|x| into [2^14, 2^15), |k| ≤ 120), f16, scaled back. */
function roundActsF16(x: Float32Array, T: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let t = 0; t < T; t++) {
    let amax = 0;
    for (let i = 0; i < cols; i++) amax = Math.max(amax, Math.abs(x[t * cols + i]));
    const k = amax > 0 && Number.isFinite(amax) ? Math.min(120, Math.max(-120, ilog2(amax) + 1 - 15)) : 0;
    for (let i = 0; i < cols; i++) out[t * cols + i] = f16Round(x[t * cols + i] * 2 ** -k) * 2 ** k;
  }
  return out;
}

function quantizedPath(c: Case, T: number, isa: NativeIsa): boolean {
  if (armIntActs(isa, c.format, c.group)) return true;
  const vnni = isa === "avx512_vnni" || isa === "avx512_amx"; // AMX is VNNI plus tiles for q4_group g32 prefill
  if (c.format === "q8_row") return (vnni && T > 1 && hasVbmi === true) || (isa === "avx2" && avx2Q8RowsTakes(c.cols, T));
  if (isa === "avx2" && avx2GemmTakes(c.format, c.cols, c.group, T)) return false; // the exact f32 GEMM
  return (vnni || isa === "avx2") && c.format.startsWith("q4");
}

/** Normalized error vs the reference; for the quantized-activation path also vs the quantized reference. */
function runCase(c: Case, T: number, isa: NativeIsa, seed: number): { err: number; errQ: number } {
  const r = rng(seed);
  let w: Weight = randWeight(c.format, c.rows, c.cols, r, c.group);
  const x = randArray(T * c.cols, r);
  const ref = new Float32Array(T * c.rows);
  tsBackend.matmul(ref, x, w, T);
  const refQ = new Float32Array(T * c.rows);
  if (quantizedPath(c, T, isa)) tsBackend.matmul(refQ, quantizeActsQ8_0(x, T, c.cols), w, T);
  else if (armF16Acts(isa, c.format)) tsBackend.matmul(refQ, roundActsF16(x, T, c.cols), w, T);
  else refQ.set(ref);
  w = nb!.prepareWeight!(w);
  nb!.setIsa(isa);
  const got = new Float32Array(T * c.rows).fill(NaN);
  nb!.matmul(got, x, w, T);
  return { err: normErr(got, ref), errQ: normErr(got, refQ) };
}

function check(c: Case, T: number, isa: NativeIsa, seed: number): void {
  const { err, errQ } = runCase(c, T, isa, seed);
  const name = `${isa} ${c.format}${c.group ? `/g${c.group}` : ""} [${c.rows}x${c.cols}] T=${T}`;
  assert.ok(errQ <= FLOAT_BOUND, `${name}: err ${errQ} > ${FLOAT_BOUND}`);
  if (quantizedPath(c, T, isa)) assert.ok(err <= QUANT_ACT_BOUND, `${name}: err vs f32 ${err} > ${QUANT_ACT_BOUND}`);
  if (armF16Acts(isa, c.format)) assert.ok(err <= F16_ACT_BOUND, `${name}: err vs f32 ${err} > ${F16_ACT_BOUND}`);
}

test("matmul parity: every format × ISA × shape, T = 1, 3, 17, 70", { skip }, () => {
  let seed = 1;
  for (const isa of isas) {
    for (const c of cases) {
      for (const T of [1, 3, 17, 70]) {
        if (T === 70 && c.rows * c.cols > 5000) continue; // the token-block edge needs no big weight
        check(c, T, isa, seed++);
      }
    }
  }
  nb!.setIsa(isas[isas.length - 1]);
});

test("matmul parity: larger shapes split across threads", { skip }, () => {
  const best = isas[isas.length - 1];
  for (const format of ["f32", "bf16", "f16", "q8_row", "q4_row", "q4_group"] as const) {
    for (const T of [1, 5]) {
      check({ format, rows: 515, cols: 1024, group: 64 }, T, best, 1000 + T);
    }
  }
});

test("matmul: reports the worst normalized error of the quantized-activation path (T = 1 and 8)", { skip }, (t) => {
  // VNNI: int4 always, int8 with VBMI; AVX2 without VNNI: int4 (decode and prompts), int8 rows (decode and 4+ tokens)
  const levels = ([["avx512_vnni", ["q4_row", "q4_group", ...(hasVbmi ? (["q8_row"] as const) : [])]], ["avx2", ["q4_row", "q4_group", "q8_row"]]] as const)
    .filter(([isa]) => isas.includes(isa));
  if (levels.length === 0) return t.skip("no AVX-512 VNNI or AVX2 on this CPU");
  for (const [isa, formats] of levels) {
    const worst: string[] = [];
    for (const format of formats) {
      let m = 0;
      for (let s = 0; s < 5; s++) {
        const T = s % 2 || (isa === "avx512_vnni" && format === "q8_row") ? 8 : 1;
        m = Math.max(m, runCase({ format, rows: 64, cols: 4096, group: 32 }, T, isa, 77 + s).err);
      }
      worst.push(`${format} ${m.toExponential(2)}`);
      assert.ok(m <= QUANT_ACT_BOUND, `${isa} ${format}: ${m}`);
    }
    t.diagnostic(`${isa} worst normalized error: ${worst.join(", ")}`);
  }
  nb!.setIsa(isas[isas.length - 1]);
});

test("matmul parity: AMX tiles (q4_group g32, 16-row blocks, padded 16-token tiles) = same-rounded reference", { skip }, (t) => {
  if (!isas.includes("avx512_amx")) return t.skip("no AMX-INT8 on this CPU / OS");
  let seed = 500;
  for (const [rows, cols] of [[16, 128], [48, 512], [160, 1024]] as const) {
    for (const T of [16, 17, 31, 33, 121]) check({ format: "q4_group", rows, cols, group: 32 }, T, "avx512_amx", seed++);
  }
  // rows not a multiple of 16 and T < 16 take the VNNI kernel on the same ISA setting
  check({ format: "q4_group", rows: 40, cols: 256, group: 32 }, 20, "avx512_amx", seed++);
  check({ format: "q4_group", rows: 32, cols: 256, group: 32 }, 7, "avx512_amx", seed++);
  nb!.setIsa(isas[isas.length - 1]);
});

test("matmul: rejects mismatched buffers instead of reading past them", { skip }, () => {
  const w = randWeight("f32", 4, 8, rng(3));
  assert.throws(() => nb!.matmul(new Float32Array(3), new Float32Array(8), w, 1), /y: length/);
  assert.throws(() => nb!.matmul(new Float32Array(4), new Float32Array(7), w, 1), /x: length/);
  const bad: Weight = { ...w, format: "bf16" };
  assert.throws(() => nb!.matmul(new Float32Array(4), new Float32Array(8), bad, 1), /wrong typed array/);
  assert.throws(() => nb!.prepareWeight!(bad), /needs a Uint16Array/);
});
