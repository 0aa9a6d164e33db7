/**
 * The KV cache subsystem on its own: layout sizes against the formula, paged attention against a contiguous
 * attention written here (an independent oracle), f16 / q8_0 storage against the f32 → f16 rounding and
 * llama.cpp's Q8_0 quantizer (src/gguf/quants.ts, tested against llama.cpp itself), block sharing, copy-on-write,
 * eviction and budget errors.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AttentionParams, KvView } from "../../src/backend/backend.js";
import { kvReadRow, kvWriteRef, pagedAttentionRef } from "../../src/backend/ts/kv.js";
import { tryLoadNativeBackend } from "../../src/backend/native/index.js";
import { quantizeQ8_0 } from "../../src/gguf/quants.js";
import { KvPool } from "../../src/kv/pool.js";
import { kvLayout, type KvType } from "../../src/kv/layout.js";
import { f16ToF32, f32ToF16 } from "../../src/tensor.js";
import { XverseError } from "../../src/errors.js";
import { rng } from "../helpers/rng.js";

const randn = (n: number, r: () => number): Float32Array => Float32Array.from({ length: n }, () => (r() * 2 - 1) * 2);

test("bytes per token follow 2 × layers × kvHeads × headDim × bytes per element (XVERSE-13B shape)", () => {
  // XVERSE-13B: 40 layers, 40 heads (no GQA), head_dim 128
  const want: Record<KvType, number> = { f32: 1_638_400, f16: 819_200, q8_0: 435_200 };
  for (const t of ["f32", "f16", "q8_0"] as KvType[]) {
    const L = kvLayout(t, 40, 40, 128, 32);
    assert.equal(L.bytesPerToken, want[t], t);
    assert.equal(L.blockBytes, 32 * want[t], `${t}: a block is exactly 32 tokens, no padding at this shape`);
  }
  // head_dim 8 (stories260K): q8_0 keeps one scale per head row
  assert.equal(kvLayout("q8_0", 5, 4, 8, 32).bytesPerToken, 2 * 5 * 4 * 8 * (1 + 2 / 8));
});

/** Contiguous causal GQA attention in float64: the oracle. k, v (S, nKv, hd). */
function attentionOracle(q: Float32Array, k: Float32Array, v: Float32Array, p: AttentionParams): Float64Array {
  const { T, past, nHeads, nKvHeads, headDim: hd, scale } = p;
  const out = new Float64Array(T * nHeads * hd);
  for (let t = 0; t < T; t++) for (let h = 0; h < nHeads; h++) {
    const kvh = Math.floor(h / (nHeads / nKvHeads));
    const sc: number[] = [];
    for (let s = 0; s <= past + t; s++) {
      let d = 0;
      for (let i = 0; i < hd; i++) d += q[(t * nHeads + h) * hd + i] * k[(s * nKvHeads + kvh) * hd + i];
      sc.push(d * scale);
    }
    const m = Math.max(...sc);
    const e = sc.map((x) => Math.exp(x - m));
    const z = e.reduce((a, b) => a + b, 0);
    for (let s = 0; s < e.length; s++) for (let i = 0; i < hd; i++) out[(t * nHeads + h) * hd + i] += (e[s] / z) * v[(s * nKvHeads + kvh) * hd + i];
  }
  return out;
}

/** A pool + sequence holding S random keys/values written in pieces, and the same data contiguously. */
function filled(type: KvType, blockSize: number, S: number, nKv: number, hd: number, seed: number, pieces = 3) {
  const r = rng(seed);
  const pool = new KvPool({ type, nLayers: 2, nKvHeads: nKv, headDim: hd, blockSize, segmentBytes: 3 * 1024 });
  const seq = pool.sequence();
  const k = randn(S * nKv * hd, r), v = randn(S * nKv * hd, r);
  const kvd = nKv * hd;
  let done = 0;
  for (let i = 0; i < pieces && done < S; i++) {
    const n = i === pieces - 1 ? S - done : Math.max(1, Math.floor(S / pieces));
    seq.reserve(n);
    for (let l = 0; l < 2; l++) kvWriteRef(seq.view(l), k.subarray(done * kvd, (done + n) * kvd), v.subarray(done * kvd, (done + n) * kvd), done, n);
    seq.commit(Array.from({ length: n }, (_, j) => done + j), 0, n);
    done += n;
  }
  return { pool, seq, k, v };
}

test("paged f32 attention equals contiguous attention (≤ 1e-6) for block sizes 1 … 32, every block offset, GQA", () => {
  let worst = 0, cases = 0;
  for (const blockSize of [1, 3, 7, 16, 32]) {
    for (const [T, past, nHeads, nKv, hd] of [[1, 0, 4, 4, 8], [1, 40, 8, 2, 16], [5, 11, 6, 3, 12], [9, 23, 4, 1, 8]]) {
      for (let shift = 0; shift < Math.min(blockSize, 4); shift++) {
        const S = past + shift + T;
        const { seq, k, v } = filled("f32", blockSize, S, nKv, hd, 100 + cases, 3);
        const q = randn(T * nHeads * hd, rng(7 + cases));
        const p: AttentionParams = { T, past: past + shift, nHeads, nKvHeads: nKv, headDim: hd, scale: 1 / Math.sqrt(hd) };
        const out = new Float32Array(q.length);
        pagedAttentionRef(out, q, seq.view(1), p);
        const ref = attentionOracle(q, k, v, p);
        for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - ref[i]));
        cases++;
      }
    }
  }
  assert.ok(worst <= 1e-6, `max |Δ| ${worst} over ${cases} cases`);
});

test("f16 storage rounds to nearest even; q8_0 storage is llama.cpp's Q8_0 block by block", () => {
  const S = 37, nKv = 2, hd = 64;
  for (const type of ["f16", "q8_0"] as KvType[]) {
    const { seq, k, v } = filled(type, 16, S, nKv, hd, 5);
    const row = new Float32Array(hd);
    for (let isV = 0; isV < 2; isV++) {
      const src = isV ? v : k;
      for (let s = 0; s < S; s++) for (let h = 0; h < nKv; h++) {
        kvReadRow(seq.view(1), isV, s, h, row);
        const x = src.subarray((s * nKv + h) * hd, (s * nKv + h + 1) * hd);
        if (type === "f16") {
          for (let i = 0; i < hd; i++) assert.equal(row[i], f16ToF32(f32ToF16(x[i])));
        } else {
          const blocks = quantizeQ8_0(x); // 34 bytes per 32: f16 d, then 32 int8
          for (let i = 0; i < hd; i++) {
            const b = Math.floor(i / 32);
            const d = f16ToF32(blocks[b * 34] | (blocks[b * 34 + 1] << 8));
            const q = (blocks[b * 34 + 2 + (i % 32)] << 24) >> 24;
            assert.equal(row[i], q * d, `q8_0 s=${s} h=${h} i=${i}`);
          }
        }
      }
    }
  }
});

test("paged f16 / q8_0 attention equals the oracle run on the stored (rounded) keys and values", () => {
  for (const type of ["f16", "q8_0"] as KvType[]) {
    const T = 4, past = 45, nHeads = 4, nKv = 2, hd = 32, S = past + T;
    const { seq } = filled(type, 16, S, nKv, hd, 9);
    const view = seq.view(0);
    // the stored values, read back, are the oracle's input
    const k = new Float32Array(S * nKv * hd), v = new Float32Array(S * nKv * hd), row = new Float32Array(hd);
    for (let s = 0; s < S; s++) for (let h = 0; h < nKv; h++) {
      kvReadRow(view, 0, s, h, row); k.set(row, (s * nKv + h) * hd);
      kvReadRow(view, 1, s, h, row); v.set(row, (s * nKv + h) * hd);
    }
    const q = randn(T * nHeads * hd, rng(3));
    const p: AttentionParams = { T, past, nHeads, nKvHeads: nKv, headDim: hd, scale: 1 / Math.sqrt(hd) };
    const out = new Float32Array(q.length);
    pagedAttentionRef(out, q, view, p);
    const ref = attentionOracle(q, k, v, p);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - ref[i]));
    assert.ok(worst <= 1e-6, `${type}: max |Δ| ${worst}`);
  }
});

function regionBytes(view: KvView, b: number): Uint8Array {
  const s = Math.floor(b / view.blocksPerSegment);
  const off = (b - s * view.blocksPerSegment) * view.layout.blockBytes;
  return view.segments[s].bytes.slice(off, off + view.layout.blockBytes);
}

test("prefix blocks are shared by key, copied before a write, and never evicted while a sequence holds them", () => {
  const pool = new KvPool({ type: "f32", nLayers: 1, nKvHeads: 1, headDim: 4, blockSize: 4, budgetBytes: 6 * kvLayout("f32", 1, 1, 4, 4).blockBytes });
  const toks = Array.from({ length: 24 }, (_, i) => 100 + i);
  const write = (seq: ReturnType<typeof pool.sequence>, from: number, n: number, val: number) => {
    seq.reserve(n);
    const kv = new Float32Array(n * 4).fill(val);
    kvWriteRef(seq.view(0), kv, kv, seq.length, n);
    seq.commit(toks, from, n);
  };
  const a = pool.sequence();
  write(a, 0, 10, 1); // blocks [0–3] [4–7] full and registered, [8–9] partial
  assert.equal(pool.stats().usedBlocks, 3);
  const b = pool.sequence();
  assert.equal(b.reuse(toks.slice(0, 12)), 8, "two full blocks found by key");
  assert.deepEqual([...b.table.subarray(0, 2)], [...a.table.subarray(0, 2)], "shared, not copied");
  assert.equal(pool.stats().usedBlocks, 3);
  // b truncates into the shared second block and writes: it gets a copy, a's block is untouched
  const before = regionBytes(a.view(0), a.table[1]);
  b.truncate(6);
  write(b, 6, 2, 9);
  assert.notEqual(b.table[1], a.table[1], "copy-on-write");
  assert.deepEqual(regionBytes(a.view(0), a.table[1]), before);
  const row = new Float32Array(4);
  kvReadRow(b.view(0), 0, 5, 0, row);
  assert.deepEqual([...row], [1, 1, 1, 1], "the copy kept the shared tokens");
  kvReadRow(b.view(0), 0, 6, 0, row);
  assert.deepEqual([...row], [9, 9, 9, 9]);
  // a different first token: no reuse at all (keys chain over the whole prefix)
  const c = pool.sequence();
  assert.equal(c.reuse([7, ...toks.slice(1)]), 0);
  c.release();
  // eviction: a and b hold 5 blocks of the 6; a's cached blocks survive only while held
  const held = regionBytes(a.view(0), a.table[0]);
  b.release();
  const d = pool.sequence();
  write(d, 0, 4, 5); // needs blocks: takes the free / least recently released ones, never a's
  assert.deepEqual(regionBytes(a.view(0), a.table[0]), held, "a live sequence's block is never evicted");
  assert.throws(() => write(d, 4, 12, 5), (e: unknown) => e instanceof XverseError && e.code === "kv_budget" && /KV cache full/.test(e.message));
  a.release();
  d.release();
  assert.equal(pool.stats().usedBlocks, 0);
  assert.ok(pool.stats().evictions >= 0);
});

test("context_full names the numbers; a released sequence refuses use", () => {
  const pool = new KvPool({ type: "f16", nLayers: 1, nKvHeads: 1, headDim: 8, blockSize: 4 });
  const s = pool.sequence(6);
  s.reserve(4);
  s.commit([1, 2, 3, 4], 0, 4);
  assert.throws(() => s.reserve(3), (e: unknown) => e instanceof XverseError && e.code === "context_full" && /7 tokens .*context size of 6/.test(e.message));
  s.release();
  assert.throws(() => s.reserve(1), /released/);
  assert.throws(() => new KvPool({ type: "f16", nLayers: 1, nKvHeads: 1, headDim: 8, budgetBytes: 10 }), /smaller than one block/);
});

test("memory grows with the tokens used, one segment at a time, up to the budget", () => {
  const L = kvLayout("f16", 4, 2, 64, 16);
  const pool = new KvPool({ type: "f16", nLayers: 4, nKvHeads: 2, headDim: 64, blockSize: 16, segmentBytes: 4 * L.blockBytes, budgetBytes: 10 * L.blockBytes });
  assert.equal(pool.bytes(), 0, "nothing allocated up front");
  const s = pool.sequence();
  s.reserve(17);
  assert.equal(pool.bytes(), 4 * L.blockBytes);
  s.reserve(16 * 9);
  assert.equal(pool.bytes(), 10 * L.blockBytes, "last segment cut to the budget");
  assert.throws(() => s.reserve(16 * 10 + 1), /KV cache full/);
});

const native = tryLoadNativeBackend({ threads: 2 }).backend;
test("the native backend's KV kernels agree with the reference (f32 exact store; attention 1e-5 normalized)", { skip: native ? false : "native addon not available" }, () => {
  for (const type of ["f32", "f16", "q8_0"] as KvType[]) {
    for (const [T, past, nHeads, nKv, hd, B] of [[1, 70, 8, 2, 64, 16], [13, 5, 4, 4, 32, 32], [3, 0, 2, 1, 96, 7]]) {
      const r = rng(T * 31 + past);
      const S = past + T;
      const mk = () => {
        const pool = new KvPool({ type, nLayers: 1, nKvHeads: nKv, headDim: hd, blockSize: B });
        const seq = pool.sequence();
        seq.reserve(S);
        return seq;
      };
      const a = mk(), b = mk();
      const k = randn(S * nKv * hd, r), v = randn(S * nKv * hd, r), q = randn(T * nHeads * hd, r);
      kvWriteRef(a.view(0), k, v, 0, S);
      native!.kvWrite(b.view(0), k, v, 0, S);
      for (let j = 0; j < a.blockCount; j++) assert.deepEqual(regionBytes(b.view(0), b.table[j]), regionBytes(a.view(0), a.table[j]), `${type} kvWrite bytes`);
      const p: AttentionParams = { T, past, nHeads, nKvHeads: nKv, headDim: hd, scale: 1 / Math.sqrt(hd) };
      const ref = new Float32Array(q.length), got = new Float32Array(q.length).fill(NaN);
      pagedAttentionRef(ref, q, a.view(0), p);
      native!.attention(got, q, b.view(0), p);
      let md = 0, mr = 0;
      for (let i = 0; i < ref.length; i++) { md = Math.max(md, Math.abs(got[i] - ref[i])); mr = Math.max(mr, Math.abs(ref[i])); }
      assert.ok(md / mr <= 1e-5, `${type} ${JSON.stringify({ T, past, nHeads, nKv, hd, B })}: ${md / mr}`);
    }
  }
});
