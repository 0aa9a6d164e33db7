/**
 * Native K-quant matmul (q2_k … q6_k, native/src/kquants*.cc) vs references built from the TS dequantizer of
 * src/gguf/quants.ts (ggml's dequantization, the spec), on random blocks, every ISA the CPU has.
 *
 * The kernels quantize x Q8_K-style (per 256 columns: d = max|x| / 127, q = x · (127 / max|x|) in f32 rounded
 * half to even) and work in integers inside a super-block. Two bounds, normalized (max|Δ| / max|ref|):
 * - vs the f32 product of dequant(W) with the SAME quantize-dequantized x: 1e-5 (only float summation order
 *   and where d · sc is rounded differ);
 * - vs the plain f32 product (the spec), relative to max_r Σ_c |W_rc · x_c| (one dot can cancel to ~0, so
 *   max|ref| is no scale for it): 2e-2 (the cost of 8-bit activations; 4e-3 … 7e-3 seen, printed).
 * Plus the native Backend (format "q2_k" … "q6_k" Weights) against the TS twin (src/backend/ts/blocks.ts) on the
 * same rounded activations, so the TypeScript side's format codes and checks are covered too.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Weight } from "../../src/backend/backend.js";
import { loadAddon, type Addon } from "../../src/backend/native/addon.js";
import { tryLoadNativeBackend, type NativeIsa } from "../../src/backend/native/index.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { dequantize } from "../../src/gguf/quants.js";
import { GGML, GGML_TYPES } from "../../src/gguf/types.js";
import { f32ToF16 } from "../../src/tensor.js";
import { rint } from "./act-quant.js";
import { normErr, randArray, rng } from "./random.js";

const load = loadAddon();
const addon: Addon | null = load.addon;
const skip = addon ? false : `native addon not available: ${"reason" in load ? load.reason : ""}`;
const isas: string[] = addon ? addon.info().supported : [];

const SAME_ACT_BOUND = 1e-5;
const F32_BOUND = 2e-2;

/** name → [ggml type id, native format code (FORMAT_CODE / enum Fmt), byte offsets of the block's f16 fields] */
const KTYPES: Record<string, [number, number, number[]]> = {
  q2_k: [GGML.Q2_K, 11, [80, 82]],
  q3_k: [GGML.Q3_K, 12, [108]],
  q4_k: [GGML.Q4_K, 13, [0, 2]],
  q5_k: [GGML.Q5_K, 14, [0, 2]],
  q6_k: [GGML.Q6_K, 15, [208]],
};

/** rows × cols / 256 random blocks: every bit pattern of codes and scales, f16 fields kept finite and moderate. */
function randomBlocks(name: string, rows: number, cols: number, r: () => number): Uint8Array {
  const [type, , f16s] = KTYPES[name];
  const tb = GGML_TYPES.get(type)!.typeSize;
  const nb = (rows * cols) / 256;
  const b = new Uint8Array(nb * tb);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
  for (let k = 0; k < nb; k++) {
    for (const o of f16s) {
      const h = f32ToF16((0.2 + r()) * 0.01);
      b[k * tb + o] = h & 255;
      b[k * tb + o + 1] = h >> 8;
    }
  }
  return b;
}


/** x as the kernels see it: int8 per 256 columns, back to f32. */
function quantizeActsQ8K(x: Float32Array, T: number, cols: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let t = 0; t < T; t++) {
    for (let b = t * cols; b < (t + 1) * cols; b += 256) {
      let amax = 0;
      for (let i = b; i < b + 256; i++) amax = Math.max(amax, Math.abs(x[i]));
      const d = Math.fround(amax / 127);
      const id = amax >= 1e-30 ? Math.fround(127 / amax) : 0; // tinier blocks quantize to 0 (127 / amax could overflow)
      for (let i = b; i < b + 256; i++) out[i] = rint(Math.fround(x[i] * id)) * d;
    }
  }
  return out;
}

/** y (T, rows) = x · Wᵀ in f64, W already f32; `.scale` = max over (t, r) of Σ_c |W_rc · x_tc|. */
function refMatmul(w: Float32Array, rows: number, cols: number, x: Float32Array, T: number): Float32Array & { scale: number } {
  const y = new Float32Array(T * rows) as Float32Array & { scale: number };
  y.scale = 0;
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < rows; r++) {
      let s = 0, a = 0;
      for (let c = 0; c < cols; c++) {
        const p = w[r * cols + c] * x[t * cols + c];
        s += p;
        a += Math.abs(p);
      }
      y[t * rows + r] = s;
      y.scale = Math.max(y.scale, a);
    }
  }
  return y;
}

/** max|got − ref| / ref.scale */
function errVsF32(got: Float32Array, ref: Float32Array & { scale: number }): number {
  let md = 0;
  for (let i = 0; i < ref.length; i++) md = Math.max(md, Math.abs(got[i] - ref[i]));
  return Number.isNaN(md) ? Infinity : md / ref.scale;
}

function runCase(name: string, rows: number, cols: number, T: number, seed: number): { errQ: number; err: number }[] {
  const r = rng(seed);
  const [type, code] = KTYPES[name];
  const data = randomBlocks(name, rows, cols, r);
  const x = randArray(T * cols, r);
  const wf = dequantize(type, data, rows * cols);
  const ref = refMatmul(wf, rows, cols, x, T);
  const refQ = refMatmul(wf, rows, cols, quantizeActsQ8K(x, T, cols), T);
  const out: { errQ: number; err: number }[] = [];
  for (const isa of isas) {
    addon!.setIsa(isa);
    const got = new Float32Array(T * rows).fill(NaN);
    addon!.matmul(got, x, code, data, null, rows, cols, 0, T);
    const errQ = normErr(got, refQ), err = errVsF32(got, ref);
    const label = `${isa} ${name} [${rows}x${cols}] T=${T}`;
    // avx512_amx prefill (T ≥ 16) of q4_k / q5_k / q6_k runs matmul_amx.cc, which rounds activations its own way
    // (its parity test covers it); only the f32 bound applies there
    const amx = isa === "avx512_amx" && T >= 16 && ["q4_k", "q5_k", "q6_k"].includes(name);
    if (!amx) assert.ok(errQ <= SAME_ACT_BOUND, `${label}: err vs same-activation reference ${errQ} > ${SAME_ACT_BOUND}`);
    assert.ok(err <= F32_BOUND, `${label}: err vs f32 ${err} > ${F32_BOUND}`);
    out.push({ errQ, err });
  }
  return out;
}

test("every K type runs natively at every ISA (info().blockFormats)", { skip }, () => {
  for (const isa of isas) {
    addon!.setIsa(isa);
    const have = (addon!.info() as unknown as { blockFormats: number[] }).blockFormats;
    for (const [name, [, code]] of Object.entries(KTYPES)) assert.ok(have.includes(code), `${isa}: ${name} (code ${code}) not native`);
  }
});

test("K-quant parity: q2_k … q6_k × ISA × rows (odd too) × cols × T = 1, 2, 5, 33", { skip }, () => {
  addon!.setThreads(2);
  let seed = 100;
  const worst: Record<string, number> = {};
  for (const name of Object.keys(KTYPES)) {
    for (const [rows, cols] of [[1, 256], [7, 512], [16, 256], [33, 768], [5, 2048]]) {
      for (const T of [1, 2, 5, 33]) {
        if (T === 33 && rows * cols > 20000) continue; // the tile edges need no big weight
        for (const e of runCase(name, rows, cols, T, seed++)) worst[name] = Math.max(worst[name] ?? 0, e.err);
      }
    }
  }
  console.log(`# worst error vs the f32 product / max Σ|W·x| (the cost of Q8_K activations): ${JSON.stringify(worst)}`);
});

test("K-quant parity on a threaded product (rows split across the pool) and a 64+ token prefill", { skip }, () => {
  addon!.setThreads(2);
  let seed = 900;
  for (const name of Object.keys(KTYPES)) {
    runCase(name, 130, 1024, 1, seed++); // 130 · 1024 ≥ 65536: rows go to the pool in chunks
    runCase(name, 9, 512, 70, seed++); // crosses the 64-token block
  }
});

test("K-quant prefill with rows as lanes (AVX2 q4_k / q5_k from 5 tokens, q2_k / q3_k / q6_k from 16): whole groups of 8 rows, a ragged rest, long prompts", { skip }, () => {
  addon!.setThreads(2);
  let seed = 1300;
  for (const name of ["q4_k", "q5_k", "q6_k", "q3_k", "q2_k"]) {
    for (const [rows, cols, T] of [[8, 256, 5], [13, 512, 6], [40, 768, 24], [64, 256, 130], [21, 1024, 9], [16, 512, 16], [11, 256, 17]]) {
      runCase(name, rows, cols, T, seed++);
    }
  }
});

test("K-quant edge values: zero activations, a huge and a tiny activation block", { skip }, () => {
  for (const name of Object.keys(KTYPES)) {
    const [type, code] = KTYPES[name];
    const r = rng(7);
    const rows = 3, cols = 512;
    const data = randomBlocks(name, rows, cols, r);
    const wf = dequantize(type, data, rows * cols);
    for (const isa of isas) {
      addon!.setIsa(isa);
      const y = new Float32Array(rows).fill(NaN);
      addon!.matmul(y, new Float32Array(cols), code, data, null, rows, cols, 0, 1);
      assert.deepEqual(Array.from(y), [0, 0, 0], `${isa} ${name}: x = 0`);
      // one non-zero activation per 256-block: quantized exactly (q = ±127, d = |x| / 127)
      const x = new Float32Array(cols);
      x[3] = 1e6;
      x[300] = -2.5;
      addon!.matmul(y, x, code, data, null, rows, cols, 0, 1);
      const ref = refMatmul(wf, rows, cols, x, 1);
      assert.ok(normErr(y, ref) <= SAME_ACT_BOUND, `${isa} ${name}: sparse x`);
      // a block of denormal-sized activations: 127 / amax would overflow; it quantizes to zeros instead of NaN
      x.fill(0).fill(1e-38, 256, 512);
      addon!.matmul(y, x, code, data, null, rows, cols, 0, 1);
      assert.deepEqual(Array.from(y), [0, 0, 0], `${isa} ${name}: tiny x`);
    }
  }
});

test("K-quant binding rejects a row length that is not a multiple of 256 and data that is too short", { skip }, () => {
  const y = new Float32Array(4), x = new Float32Array(4 * 300);
  assert.throws(() => addon!.matmul(y, x, 13, new Uint8Array(4 * 144 * 2), null, 4, 300, 0, 1), /multiple of 256/);
  assert.throws(() => addon!.matmul(y, new Float32Array(512 * 4), 13, new Uint8Array(4 * 144 * 2 - 1), null, 4, 512, 0, 1), /data: length/);
});

test("native Backend with q2_k … q6_k Weights = the TS twin on the same Q8_K-rounded activations", { skip }, () => {
  const load = tryLoadNativeBackend({ threads: 2 });
  assert.ok(load.backend, "native backend");
  const nb = load.backend;
  const r = rng(4242);
  for (const name of Object.keys(KTYPES)) {
    const rows = 13, cols = 512, T = 3;
    const w: Weight = { format: name as Weight["format"], rows, cols, data: randomBlocks(name, rows, cols, r) };
    const x = randArray(T * cols, r);
    const ref = new Float32Array(T * rows);
    tsBackend.matmul(ref, quantizeActsQ8K(x, T, cols), w, T);
    const pw = nb.prepareWeight ? nb.prepareWeight(w) : w;
    for (const isa of nb.supportedIsas as NativeIsa[]) {
      nb.setIsa(isa);
      const got = new Float32Array(T * rows).fill(NaN);
      nb.matmul(got, x, pw, T);
      const e = normErr(got, ref);
      assert.ok(e <= SAME_ACT_BOUND, `${isa} ${name} via Backend: ${e}`);
    }
  }
});
