/**
 * Native attention, RMSNorm, RoPE, SiLU·mul and add vs the TS reference, on every instruction set the CPU has.
 * All f32: bound 1e-5 normalized (max|Δ| / max|ref|); only summation order and exp/sqrt rounding differ.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AttentionParams } from "../../src/backend/backend.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { tryLoadNativeBackend, type NativeIsa } from "../../src/backend/native/index.js";
import { normErr, randArray, rng } from "./random.js";

const load = tryLoadNativeBackend({ threads: 2 });
const nb = load.backend;
const skip = nb ? false : `native addon not available: ${load.reason}`;
const isas = (nb?.supportedIsas ?? []) as NativeIsa[];
const BOUND = 1e-5;

function close(got: Float32Array, ref: Float32Array, what: string): void {
  const e = normErr(got, ref);
  assert.ok(e <= BOUND, `${what}: normalized error ${e} > ${BOUND}`);
}

interface AttnCase {
  T: number;
  past: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  mask?: "none" | "holes" | "leftpad";
}

const attnCases: AttnCase[] = [
  { T: 1, past: 0, nHeads: 4, nKvHeads: 4, headDim: 16 },
  { T: 1, past: 37, nHeads: 8, nKvHeads: 2, headDim: 128 },
  { T: 3, past: 5, nHeads: 6, nKvHeads: 3, headDim: 20 },
  { T: 17, past: 0, nHeads: 4, nKvHeads: 1, headDim: 7 },
  { T: 17, past: 40, nHeads: 4, nKvHeads: 2, headDim: 64, mask: "holes" },
  { T: 5, past: 0, nHeads: 2, nKvHeads: 1, headDim: 33, mask: "leftpad" },
  { T: 1, past: 300, nHeads: 40, nKvHeads: 40, headDim: 128, mask: "holes" },
  { T: 64, past: 64, nHeads: 8, nKvHeads: 8, headDim: 128 },
];

function runAttention(c: AttnCase, isa: NativeIsa, seed: number): void {
  const r = rng(seed);
  const S = c.past + c.T;
  const q = randArray(c.T * c.nHeads * c.headDim, r);
  const k = randArray(S * c.nKvHeads * c.headDim, r);
  const v = randArray(S * c.nKvHeads * c.headDim, r);
  let keyMask: Uint8Array | null = null;
  if (c.mask === "holes") keyMask = Uint8Array.from({ length: S }, (_, i) => (i % 7 === 3 ? 0 : 1));
  if (c.mask === "leftpad") keyMask = Uint8Array.from({ length: S }, (_, i) => (i < 2 ? 0 : 1)); // query 0, 1: no keys
  const p: AttentionParams = { T: c.T, past: c.past, nHeads: c.nHeads, nKvHeads: c.nKvHeads, headDim: c.headDim, scale: 1 / Math.sqrt(c.headDim), keyMask };
  const ref = new Float32Array(q.length);
  tsBackend.attention(ref, q, k, v, p);
  nb!.setIsa(isa);
  const got = new Float32Array(q.length).fill(NaN);
  nb!.attention(got, q, k, v, p);
  close(got, ref, `${isa} attention ${JSON.stringify(c)}`);
}

test("attention parity: GQA, causal, past > 0, keyMask holes and fully masked queries", { skip }, () => {
  let seed = 10;
  for (const isa of isas) for (const c of attnCases) runAttention(c, isa, seed++);
  nb!.setIsa(isas[isas.length - 1]);
});

test("attention: a fully masked query gives zeros", { skip }, () => {
  const r = rng(5);
  const q = randArray(2 * 4, r);
  const k = randArray(2 * 4, r);
  const out = new Float32Array(8).fill(7);
  nb!.attention(out, q, k, k, { T: 2, past: 0, nHeads: 1, nKvHeads: 1, headDim: 4, scale: 0.5, keyMask: new Uint8Array([0, 1]) });
  assert.deepEqual(Array.from(out.subarray(0, 4)), [0, 0, 0, 0]);
  assert.ok(out.subarray(4).some((x) => x !== 0));
});

test("rmsnorm parity (in place and out of place)", { skip }, () => {
  const r = rng(20);
  for (const [T, dim] of [[1, 37], [3, 4096], [17, 130]]) {
    const x = randArray(T * dim, r);
    const w = randArray(dim, r);
    const ref = new Float32Array(x.length);
    tsBackend.rmsnorm(ref, x, w, T, dim, 1e-6);
    const got = new Float32Array(x.length);
    nb!.rmsnorm(got, x, w, T, dim, 1e-6);
    close(got, ref, `rmsnorm T=${T} dim=${dim}`);
    const inPlace = x.slice();
    nb!.rmsnorm(inPlace, inPlace, w, T, dim, 1e-6);
    close(inPlace, ref, `rmsnorm in place T=${T} dim=${dim}`);
  }
});

test("rope parity (rotate-half)", { skip }, () => {
  const r = rng(30);
  for (const [T, nHeads, headDim] of [[1, 5, 8], [3, 40, 128], [17, 2, 6]]) {
    const x = randArray(T * nHeads * headDim, r);
    const ang = randArray((T * headDim) / 2, r, 3);
    const cos = ang.map(Math.cos);
    const sin = ang.map(Math.sin);
    const ref = x.slice();
    tsBackend.rope(ref, T, nHeads, headDim, cos, sin);
    const got = x.slice();
    nb!.rope(got, T, nHeads, headDim, cos, sin);
    close(got, ref, `rope T=${T} nHeads=${nHeads} headDim=${headDim}`);
  }
});

test("siluMul and addInPlace parity (serial and threaded sizes)", { skip }, () => {
  const r = rng(40);
  for (const [isa, n] of isas.flatMap((i) => [1, 37, 5504, 100_003].map((n) => [i, n] as const))) {
    nb!.setIsa(isa);
    const gate = randArray(n, r, 6);
    if (n > 1) {
      gate[0] = 100; // saturating exp in both directions
      gate[1] = -100;
    }
    const up = randArray(n, r);
    const ref = gate.slice();
    tsBackend.siluMul(ref, up, n);
    const got = gate.slice();
    nb!.siluMul(got, up, n);
    close(got, ref, `${isa} siluMul n=${n}`);
    const y1 = up.slice();
    const y2 = up.slice();
    tsBackend.addInPlace(y1, gate, n);
    nb!.addInPlace(y2, gate, n);
    close(y2, y1, `addInPlace n=${n}`);
  }
  nb!.setIsa(isas[isas.length - 1]);
});
