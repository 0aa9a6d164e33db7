// Every WebGPU kernel against the TS reference backend (the spec) on seeded random inputs and odd shapes, in
// both kernel styles ("thread": no barriers, what SwiftShader runs; "workgroup": the GPU path, with subgroup
// reductions and without), plus the weight split across several buffers. Prints the parity table
// (kernel × format × T → max normalized error).
/// <reference types="@webgpu/types" />
import { test, after } from "node:test";
import assert from "node:assert/strict";
import type { Weight, WeightFormat } from "../../src/backend/backend.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { KvPool } from "../../src/kv/pool.js";
import type { KvType } from "../../src/kv/layout.js";
import { normErr, randArray, randWeight, rng } from "../native/random.js";
import { gpuBackend } from "./gpu.js";

const STYLES = [
  { name: "thread", opts: { style: "thread" as const } },
  { name: "workgroup+subgroups", opts: { style: "workgroup" as const } },
  { name: "workgroup", opts: { style: "workgroup" as const, subgroups: false } },
];
const table: string[] = [];
after(() => console.log(`WebGPU parity (max |Δ| / max |ref|):\n${table.join("\n")}`));

function withExtras(w: Weight, r: () => number, mins: boolean, perm: boolean): Weight {
  const out = { ...w };
  if (mins) out.mins = randArray(w.scales!.length, r, 0.01);
  if (perm) {
    const p = Int32Array.from({ length: w.cols }, (_, i) => i);
    for (let i = p.length - 1; i > 0; i--) { const j = Math.floor(r() * (i + 1)); [p[i], p[j]] = [p[j], p[i]]; }
    out.perm = p;
  }
  return out;
}

const CASES: { label: string; format: WeightFormat; cols: number; mins?: boolean; perm?: boolean; group?: number }[] = [
  { label: "f32", format: "f32", cols: 70 },
  { label: "f16", format: "f16", cols: 70 },
  { label: "bf16", format: "bf16", cols: 70 },
  { label: "q8_row", format: "q8_row", cols: 70 },
  { label: "q4_row", format: "q4_row", cols: 70 },
  { label: "q4_group", format: "q4_group", cols: 96 },
  { label: "q4_group g64 +mins +perm", format: "q4_group", cols: 128, mins: true, perm: true, group: 64 },
  { label: "q8_group", format: "q8_group", cols: 96 },
  { label: "q8_group +mins +perm", format: "q8_group", cols: 96, mins: true, perm: true },
];

test("[webgpu workgroup] prefill (T > 8) of f32 / f16 / bf16 weights runs the tiled kernel: equals the TS reference within 1e-5", async () => {
  const be = await gpuBackend({ style: "workgroup" });
  const r = rng(9);
  for (const format of ["f32", "f16", "bf16"] as const) {
    const w = randWeight(format, 70, 96, r); // 70 rows: a full 64-row tile and a partial one; 3 units of 32
    for (const T of [9, 40]) {
      const x = randArray(T * 96, r);
      const ref = new Float32Array(T * w.rows);
      tsBackend.matmul(ref, x, w, T);
      const e = normErr(await be.kernels.matmul(x, w, T), ref);
      table.push(`  matmul ${(format + " tiled prefill").padEnd(26)} T=${String(T).padEnd(3)} workgroup            ${e.toExponential(2)}`);
      assert.ok(e <= 1e-5, `${format} T=${T}: ${e}`);
    }
  }
});

for (const style of STYLES) {
  test(`[webgpu ${style.name}] matmul of every dense format equals the TS reference (rows 37, T 1 / 3 / 17) within 1e-5`, async () => {
    const be = await gpuBackend(style.opts);
    const r = rng(7);
    for (const c of CASES) {
      const w = withExtras(randWeight(c.format, 37, c.cols, r, c.group ?? 32), r, !!c.mins, !!c.perm);
      for (const T of [1, 3, 17]) {
        const x = randArray(T * c.cols, r);
        const ref = new Float32Array(T * w.rows);
        tsBackend.matmul(ref, x, w, T);
        const got = await be.kernels.matmul(x, w, T);
        const e = normErr(got, ref);
        if (style.name === "thread" || T === 3) table.push(`  matmul ${c.label.padEnd(26)} T=${String(T).padEnd(3)} ${style.name.padEnd(20)} ${e.toExponential(2)}`);
        assert.ok(e <= 1e-5, `${c.label} T=${T}: ${e}`);
      }
    }
  });
}

test("[webgpu] a weight split across several buffers (row-range parts) gives the same matmul", async () => {
  const be = await gpuBackend({ maxPartBytes: 600 });
  const r = rng(11);
  for (const format of ["f32", "f16", "q8_row", "q4_group"] as const) {
    const w = randWeight(format, 41, 64, r);
    const x = randArray(5 * 64, r);
    const ref = new Float32Array(5 * 41);
    tsBackend.matmul(ref, x, w, 5);
    const got = await be.kernels.matmul(x, w, 5);
    const parts = (w.handle as { parts: unknown[] }).parts.length;
    assert.ok(parts > 2, `${format}: ${parts} parts`);
    const e = normErr(got, ref);
    table.push(`  matmul ${format} split in ${parts} parts         T=5   ${e.toExponential(2)}`);
    assert.ok(e <= 1e-5, `${format}: ${e}`);
  }
});

for (const style of STYLES.slice(0, 2)) {
  test(`[webgpu ${style.name}] rmsnorm, add+rmsnorm, rope (q and k), siluMul and add equal the TS reference`, async () => {
    const be = await gpuBackend(style.opts);
    const r = rng(3);
    for (const [T, dim] of [[1, 48], [5, 70], [3, 257]]) {
      const x = randArray(T * dim, r), g = randArray(dim, r);
      const ref = new Float32Array(T * dim);
      tsBackend.rmsnorm(ref, x, g, T, dim, 1e-6);
      const e = normErr(await be.kernels.rmsnorm(x, g, T, dim, 1e-6), ref);
      table.push(`  rmsnorm T=${T} dim=${dim} ${style.name}: ${e.toExponential(2)}`);
      assert.ok(e <= 1e-6, `rmsnorm ${T}x${dim}: ${e}`);
    }
    for (const [T, dim] of [[1, 48], [4, 130]]) {
      const x = randArray(T * dim, r), d = randArray(T * dim, r), g = randArray(dim, r);
      const sum = x.slice();
      tsBackend.addInPlace(sum, d, T * dim);
      const ref = new Float32Array(T * dim);
      tsBackend.rmsnorm(ref, sum, g, T, dim, 1e-5);
      const [gx, gy] = await be.kernels.addRmsnorm(x, d, g, T, dim, 1e-5);
      assert.deepEqual(gx, sum);
      assert.ok(normErr(gy, ref) <= 1e-6, `add+rmsnorm ${T}x${dim}`);
    }
    for (const [T, nHeads, nKv, hd] of [[1, 4, 2, 12], [7, 3, 3, 64]]) {
      const q = randArray(T * nHeads * hd, r), k = randArray(T * nKv * hd, r), cos = randArray(T * hd / 2, r), sin = randArray(T * hd / 2, r);
      const rq = q.slice(), rk = k.slice();
      tsBackend.rope(rq, T, nHeads, hd, cos, sin);
      tsBackend.rope(rk, T, nKv, hd, cos, sin);
      const [gq, gk] = await be.kernels.rope(q, k, T, nHeads, nKv, hd, cos, sin);
      assert.ok(normErr(gq, rq) <= 1e-6 && normErr(gk, rk) <= 1e-6, "rope");
    }
    for (const n of [1, 67, 5000]) {
      const a = randArray(n, r, 20), b = randArray(n, r);
      const ref = a.slice();
      tsBackend.siluMul(ref, b, n);
      assert.ok(normErr(await be.kernels.siluMul(a, b, n), ref) <= 1e-6, `siluMul ${n}`);
      const sum = a.slice();
      tsBackend.addInPlace(sum, b, n);
      assert.deepEqual(await be.kernels.add(a, b, n), sum);
    }
  });

  test(`[webgpu ${style.name}] kvWrite stores the TS bytes exactly (f32, f16, q8_0) and attention (GQA, causal, across blocks) equals the TS reference`, async () => {
    const be = await gpuBackend(style.opts);
    const r = rng(5);
    for (const type of ["f32", "f16", "q8_0"] as KvType[]) {
      // head dims 16 / 8 / 6: q8_0 groups of a whole head (several per word), 64: groups of 32
      for (const [nHeads, nKv, hd, past, T] of [[4, 2, 16, 0, 5], [6, 3, 64, 37, 1], [2, 1, 8, 70, 9], [2, 2, 6, 3, 4]]) {
        const pool = new KvPool({ type, nLayers: 2, nKvHeads: nKv, headDim: hd, blockSize: 8, segmentBytes: 1 });
        const seq = pool.sequence(200);
        seq.reserve(past + T);
        const kvd = nKv * hd;
        // the cache's earlier tokens, written by the TS kernel in both copies
        if (past) tsBackend.kvWrite(seq.view(1), randArray(past * kvd, r), randArray(past * kvd, r), 0, past);
        const k = randArray(T * kvd, r), v = randArray(T * kvd, r), q = randArray(T * nHeads * hd, r);
        const p = { T, past, nHeads, nKvHeads: nKv, headDim: hd, scale: 1 / Math.sqrt(hd) };
        const gpu = await be.kernels.kvWriteAttention(seq.view(1), k, v, q, p);
        tsBackend.kvWrite(seq.view(1), k, v, past, T);
        const ref = new Float32Array(T * nHeads * hd);
        tsBackend.attention(ref, q, seq.view(1), p);
        const tsBytes = new Uint8Array(pool.bytes());
        for (let i = 0, o = 0; i < pool.segments.length; o += pool.segments[i].bytes.length, i++) tsBytes.set(pool.segments[i].bytes, o);
        assert.ok(Buffer.from(gpu.bytes).equals(Buffer.from(tsBytes)), `${type} kvWrite bytes differ`);
        const e = normErr(gpu.out, ref);
        table.push(`  attention kv=${type} heads ${nHeads}/${nKv} hd ${hd} past ${past} T ${T} ${style.name}: ${e.toExponential(2)}`);
        assert.ok(e <= 1e-5, `attention ${type} ${nHeads}/${nKv}/${hd}: ${e}`);
      }
    }
  });
}

test("[webgpu] no adapter: createWebGpuBackend fails with a message saying what to install or set", async () => {
  const { createWebGpuBackend } = await import("../../src/backend/webgpu/index.js");
  const noAdapter = { requestAdapter: async () => null } as unknown as GPU;
  await assert.rejects(createWebGpuBackend(noAdapter), /no adapter found.*VK_ICD_FILENAMES.*--backend native/);
});
