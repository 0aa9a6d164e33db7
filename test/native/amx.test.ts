/**
 * The AMX-INT8 prefill kernel (native/src/matmul_amx.cc) for every format it takes — ours (q4_row, q8_row,
 * q4_group / q8_group with groups of a multiple of 32; zero points and desc_act are test/native/group-zp's) and the GGUF
 * blocks q4_0, q4_1, q5_0, q5_1, q8_0, q4_k, q5_k (weight groups of 32) and q6_k (16) — against the TS twin
 * (dequant(W) · x in f32, itself checked against gguf/quants.ts's dequantize) run on the SAME activations the
 * kernel sees (int8 per 32 columns, d = amax / 127, rounded half to even): ≤ 1e-5 normalized. Shapes cover
 * several 16-row blocks, a partial last token tile (T = 17, 40) and K-quant super-blocks.
 * Skipped where the CPU or OS has no AMX-INT8 (the other ISAs are covered by matmul / blocks / kquants tests).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Weight } from "../../src/backend/backend.js";
import { tryLoadNativeBackend } from "../../src/backend/native/index.js";
import type { BlockFormat } from "../../src/backend/ts/blocks.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { quantizeActsQ8_0 } from "./act-quant.js";
import { normErr, randArray, randBlockWeight, randWeight, rng } from "./random.js";

const load = tryLoadNativeBackend({ threads: 2 });
const nb = load.backend;
const amx = nb?.supportedIsas.includes("avx512_amx") ?? false;
const skip = !nb ? `native addon not available: ${load.reason}` : !amx ? "no AMX-INT8 on this CPU / OS" : false;

const BOUND = 1e-5;
const FORMATS: BlockFormat[] = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_k", "q5_k", "q6_k"];

function check(w: Weight, T: number, seed: number, name: string): void {
  const r = rng(seed);
  const x = randArray(T * w.cols, r);
  const ref = new Float32Array(T * w.rows);
  tsBackend.matmul(ref, quantizeActsQ8_0(x, T, w.cols), w, T);
  const got = new Float32Array(T * w.rows).fill(NaN);
  nb!.matmul(got, x, nb!.prepareWeight!(w), T);
  const e = normErr(got, ref);
  assert.ok(e <= BOUND, `${name} [${w.rows}, ${w.cols}] T=${T}: ${e} > ${BOUND}`);
}

test("amx: GGUF block formats = TS twin on the same rounded activations (T = 16, 17, 40)", { skip }, () => {
  nb!.setIsa("avx512_amx");
  let seed = 1;
  try {
    for (const fmt of FORMATS) {
      for (const [rows, cols] of [[16, 256], [48, 512]] as const) {
        const w = randBlockWeight(fmt, rows, cols, rng(seed++));
        for (const T of [16, 17, 40]) check(w, T, seed++, fmt);
      }
    }
  } finally {
    nb!.setIsa(nb!.supportedIsas[nb!.supportedIsas.length - 1] as "avx512_amx");
  }
});

test("amx: our int4 / int8 formats (q4_row, q8_row, q4_group g32 / g128, q8_group g64) and a declined weight agree too", { skip }, () => {
  nb!.setIsa("avx512_amx");
  try {
    const r = rng(9);
    check(randWeight("q4_group", 32, 512, r, 32), 33, 10, "q4_group g32");
    check(randWeight("q4_group", 48, 512, r, 128), 16, 12, "q4_group g128");
    check(randWeight("q8_group", 32, 256, r, 64), 20, 13, "q8_group g64");
    check(randWeight("q4_row", 16, 256, r), 17, 14, "q4_row");
    check(randWeight("q8_row", 32, 384, r), 40, 15, "q8_row");
    check(randBlockWeight("q4_0", 24, 256, r), 20, 11, "q4_0 (rows % 16: the legacy VNNI kernel)");
  } finally {
    nb!.setIsa(nb!.supportedIsas[nb!.supportedIsas.length - 1] as "avx512_amx");
  }
});
