/**
 * Native RMSNorm, RoPE, SiLU·mul, add and the paged KV kernels (kvWrite, attention) vs the TS reference, on every
 * instruction set the CPU has. All f32 math: bound 1e-5 normalized (max|Δ| / max|ref|); only summation order and
 * exp/sqrt rounding differ. kvWrite must store the reference's bytes exactly (f16 rounding, q8_0 quantization).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AttentionParams } from "../../src/backend/backend.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { kvWriteRef, pagedAttentionRef } from "../../src/backend/ts/kv.js";
import { KvPool } from "../../src/kv/pool.js";
import { kvLayout, type KvType } from "../../src/kv/layout.js";
import type { KvSequence } from "../../src/kv/sequence.js";
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

// --- paged KV cache: kvWrite (bit-identical bytes) and paged attention (1e-5) against src/backend/ts/kv.ts ---

/**
 * Two sequences of S tokens in one pool whose blocks are allocated interleaved (a: 0, 2, 4 …, b: 1, 3, 5 …) in
 * segments of 3 blocks, then a's table is reversed block by block through copies: its blocks are non-contiguous,
 * out of order, and spread over several segments.
 */
function scatteredSeq(type: KvType, nLayers: number, nKv: number, hd: number, B: number, S: number): KvSequence {
  const L = kvLayout(type, nLayers, nKv, hd, B);
  const pool = new KvPool({ type, nLayers, nKvHeads: nKv, headDim: hd, blockSize: B, segmentBytes: 3 * L.blockBytes, prefixCaching: false });
  const a = pool.sequence(), b = pool.sequence();
  const nb = Math.ceil(S / B);
  for (let j = 1; j <= nb; j++) {
    a.reserve(j * B - a.length);
    a.commit(new Int32Array(B), 0, B);
    b.reserve(B);
    b.commit(new Int32Array(B), 0, B);
  }
  a.table.subarray(0, nb).reverse(); // token order no longer follows block ids (contents are written afterwards)
  a.truncate(0);
  a.reserve(S);
  return a;
}

function regionBytesOf(seq: KvSequence, layer: number): Uint8Array {
  const L = seq.pool.layout;
  const parts: Uint8Array[] = [];
  for (let j = 0; j < seq.blockCount; j++) {
    const [s, off] = seq.pool.locate(seq.table[j]);
    const base = off + 2 * layer * L.regionBytes;
    parts.push(seq.pool.segments[s].bytes.slice(base, base + 2 * L.regionBytes));
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : Math.min(a.length, b.length);
}

const KV_TYPES_ALL: KvType[] = ["f32", "f16", "q8_0"];

test("kvWrite stores the reference's exact bytes (f32 / f16 / q8_0, every ISA, several layers, odd shapes)", { skip }, () => {
  const r = rng(50);
  for (const isa of isas) {
    nb!.setIsa(isa);
    for (const type of KV_TYPES_ALL) {
      for (const [nKv, hd, B, S, T] of [[2, 8, 1, 5, 5], [3, 20, 7, 40, 13], [4, 64, 16, 70, 33], [1, 96, 32, 33, 1], [2, 128, 32, 600, 300]]) {
        const ref = scatteredSeq(type, 2, nKv, hd, B, S);
        const got = scatteredSeq(type, 2, nKv, hd, B, S);
        const k = randArray(S * nKv * hd, r, 3), v = randArray(S * nKv * hd, r, 3);
        k[0] = 0; k[1] = -2.5e-8; k[2] = 70000; k[3] = -1e-6; // f16 zero, subnormal, overflow
        if (S > 1) v.fill(0, 0, nKv * hd); // an all-zero q8_0 group: d = 0
        for (let layer = 0; layer < 2; layer++) {
          // in pieces: a prefill of T tokens, then the rest one token at a time (the decode path)
          for (let s0 = 0; s0 < S; s0 += s0 === 0 ? T : 1) {
            const n = s0 === 0 ? T : 1;
            const ks = k.subarray(s0 * nKv * hd, (s0 + n) * nKv * hd), vs = v.subarray(s0 * nKv * hd, (s0 + n) * nKv * hd);
            kvWriteRef(ref.view(layer), ks, vs, s0, n);
            nb!.kvWrite(got.view(layer), ks, vs, s0, n);
          }
          const d = firstDiff(regionBytesOf(got, layer), regionBytesOf(ref, layer));
          assert.equal(d, -1, `${isa} ${type} kvWrite nKv=${nKv} hd=${hd} B=${B} S=${S} layer ${layer}: first differing byte ${d}`);
        }
      }
    }
  }
  nb!.setIsa(isas[isas.length - 1]);
});

test("paged attention parity (f32 / f16 / q8_0, every ISA, GQA, decode and prefill chunks, scattered blocks)", { skip }, () => {
  const r = rng(60);
  // [nHeads, nKv, hd, B, cases: [T, past][]]
  const shapes: [number, number, number, number, [number, number][]][] = [
    [1, 1, 8, 1, [[1, 0], [1, 1], [1, 37], [5, 3]]],
    [2, 1, 20, 7, [[1, 0], [1, 6], [1, 7], [1, 150], [9, 20], [24, 5]]],
    [8, 2, 64, 16, [[1, 0], [1, 15], [1, 16], [1, 300], [3, 31], [17, 50], [64, 100]]],
    [8, 1, 96, 32, [[1, 5], [1, 200], [2, 64], [40, 33]]],
    [4, 4, 128, 32, [[1, 0], [1, 299], [16, 40], [33, 64], [64, 190]]],
    [16, 2, 128, 16, [[1, 257], [4, 100], [64, 65]]],
    // one or two rows per kv head on f16: the AVX2 decode kernel reads the blocks in place (kv.cc, run_item)
    [4, 2, 32, 8, [[1, 0], [1, 40], [2, 17]]],
    [2, 2, 16, 4, [[2, 9], [1, 30]]],
  ];
  const worst: Record<string, number> = {};
  for (const isa of isas) {
    nb!.setIsa(isa);
    for (const type of KV_TYPES_ALL) {
      for (const [nHeads, nKv, hd, B, cases] of shapes) {
        const Smax = Math.max(...cases.map(([T, past]) => T + past));
        const seq = scatteredSeq(type, 2, nKv, hd, B, Smax);
        const k = randArray(Smax * nKv * hd, r, 2), v = randArray(Smax * nKv * hd, r);
        for (let layer = 0; layer < 2; layer++) kvWriteRef(seq.view(layer), k, v, 0, Smax);
        for (const [T, past] of cases) {
          const q = randArray(T * nHeads * hd, r, 2);
          const p: AttentionParams = { T, past, nHeads, nKvHeads: nKv, headDim: hd, scale: 1 / Math.sqrt(hd) };
          const ref = new Float32Array(q.length), got = new Float32Array(q.length).fill(NaN);
          pagedAttentionRef(ref, q, seq.view(1), p);
          nb!.attention(got, q, seq.view(1), p);
          const e = normErr(got, ref);
          const key = `${isa} ${type}`;
          worst[key] = Math.max(worst[key] ?? 0, e);
          assert.ok(e <= BOUND, `${key} nHeads=${nHeads} nKv=${nKv} hd=${hd} B=${B} T=${T} past=${past}: ${e}`);
        }
      }
    }
  }
  nb!.setIsa(isas[isas.length - 1]);
  console.log(`paged attention worst normalized error: ${JSON.stringify(worst)}`);
});

test("paged attention on 1 thread and with the key range split (flash-decoding) agree", { skip }, () => {
  const r = rng(70);
  for (const type of KV_TYPES_ALL) {
    // 2 kv heads decode: few items per thread, so the keys are split across threads
    const [nHeads, nKv, hd, B, S] = [8, 2, 64, 32, 1000];
    const seq = scatteredSeq(type, 1, nKv, hd, B, S);
    kvWriteRef(seq.view(0), randArray(S * nKv * hd, r), randArray(S * nKv * hd, r), 0, S);
    for (const [T, past] of [[1, S - 1], [3, S - 3]]) {
      const q = randArray(T * nHeads * hd, r, 2);
      const p: AttentionParams = { T, past, nHeads, nKvHeads: nKv, headDim: hd, scale: 1 / Math.sqrt(hd) };
      const ref = new Float32Array(q.length);
      pagedAttentionRef(ref, q, seq.view(0), p);
      for (const threads of [1, 2, 5]) {
        nb!.setThreads(threads);
        const got = new Float32Array(q.length);
        nb!.attention(got, q, seq.view(0), p);
        assert.ok(normErr(got, ref) <= BOUND, `${type} T=${T} threads=${threads}: ${normErr(got, ref)}`);
      }
    }
  }
  nb!.setThreads(2);
});

test("the KV bindings refuse bad block tables and layouts (a JS error, never a wild read or write)", { skip }, () => {
  const seq = scatteredSeq("f16", 2, 2, 16, 4, 12);
  const q = new Float32Array(4 * 16), out = new Float32Array(4 * 16), k = new Float32Array(2 * 16);
  const p: AttentionParams = { T: 1, past: 11, nHeads: 4, nKvHeads: 2, headDim: 16, scale: 0.25 };
  const view = seq.view(1);
  nb!.attention(out, q, view, p); // valid
  const nBlocks = seq.pool.stats().allocatedBlocks;
  for (const bad of [nBlocks, nBlocks + 100, -1, 2 ** 30]) {
    const table = seq.table.slice();
    table[1] = bad;
    const v = { ...view, table };
    assert.throws(() => nb!.attention(out, q, v, p), /kv: /, `attention with block id ${bad}`);
    assert.throws(() => nb!.kvWrite(v, k, k, 4, 1), /kv: /, `kvWrite with block id ${bad}`);
  }
  // an id inside an existing segment but past its end (a segment shorter than blocksPerSegment blocks)
  const short = view.buffers.map((b) => b.slice(0, view.layout.blockBytes));
  assert.throws(() => nb!.attention(out, q, { ...view, buffers: short }, p), /outside segment/);
  // the table must cover every position
  assert.throws(() => nb!.attention(out, q, { ...view, table: seq.table.subarray(0, 2) }, p), /table/);
  assert.throws(() => nb!.attention(out, q, view, { ...p, past: 4 * seq.table.length }), /table/);
  // a layer past the block, a segment that is not an ArrayBuffer, short q / out / k
  assert.throws(() => nb!.attention(out, q, { ...view, layer: 2 }, p), /layer/);
  assert.throws(() => nb!.attention(out, q, { ...view, buffers: view.buffers.map(() => new Float32Array(4) as unknown as ArrayBuffer) }, p), /ArrayBuffer/);
  assert.throws(() => nb!.attention(out.subarray(1), q, view, p), /out/);
  assert.throws(() => nb!.kvWrite(view, k.subarray(1), k, 0, 1), /k: /);
  assert.throws(() => nb!.attention(out, q, view, { ...p, nHeads: 3 }), /multiple/);
  // a layout whose region would not hold its values
  const L = view.layout;
  assert.throws(() => nb!.attention(out, q, { ...view, layout: { ...L, regionBytes: 64 } }, p), /regionBytes/);
  assert.throws(() => nb!.attention(out, q, { ...view, layout: { ...L, blockSize: L.blockSize * 4 } }, p), /regionBytes/);
});
