/**
 * Native RMSNorm, RoPE, SiLU·mul and add vs the TS reference, on every instruction set the CPU has.
 * All f32: bound 1e-5 normalized (max|Δ| / max|ref|); only summation order and exp/sqrt rounding differ.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
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
