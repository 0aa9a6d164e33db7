/**
 * WebGPU GGUF block kernels (src/backend/webgpu/blocks/) vs the TS reference backend (the spec), on random valid
 * blocks and odd shapes: rows not a multiple of anything, T = 1, 3, 17 (17 = two full token tiles of 8 + 1),
 * column counts of 1 … 4 blocks and more units than threads, weights split in row parts (rowBase ≠ 0).
 * Bounds: matmul ≤ 1e-5 normalized (max|Δ| / max|ref|; only f32 summation order and fused multiply-adds in the
 * dequantization differ); embed rows ≤ 1e-7 relative per value (exact unless the compiler fuses d·q + m).
 * Runs on whatever WebGPU adapter the `webgpu` package finds (SwiftShader in CI); skips when there is none.
 */
/// <reference types="@webgpu/types" />
import assert from "node:assert/strict";
import { test, after } from "node:test";
import type { Weight } from "../../src/backend/backend.js";
import { BLOCK_GEOMETRY, type BlockFormat } from "../../src/backend/ts/blocks.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { formatKernel } from "../../src/backend/webgpu/registry.js";
import { BLOCK_FORMATS } from "../../src/backend/webgpu/blocks/index.js";
import { normErr, randArray, randBlockWeight, rng } from "../native/random.js";
import { f32ToF16 } from "../../src/tensor.js";
import { runEmbed, runMatmul, type RunOptions } from "../../src/backend/webgpu/blocks/run.js";
import { existsSync } from "node:fs";

/** A device from the optional `webgpu` package (Dawn); SwiftShader's Vulkan driver when nothing else is set. */
async function openDevice(): Promise<{ device?: GPUDevice; gpu?: GPU; reason?: string }> {
  const icd = "/usr/lib/chromium/vk_swiftshader_icd.json";
  if (!process.env.VK_ICD_FILENAMES && existsSync(icd)) process.env.VK_ICD_FILENAMES = icd;
  try {
    const { create, globals } = (await import("webgpu")) as unknown as { create(o: string[]): GPU; globals: object };
    Object.assign(globalThis, globals);
    // the GPU object must stay referenced while its devices live: Dawn's instance dies with it (crash, not error)
    const gpu = create([]);
    const adapter = await gpu.requestAdapter();
    if (!adapter) return { reason: "requestAdapter() returned null" };
    const requiredFeatures: GPUFeatureName[] = adapter.features.has("subgroups") ? ["subgroups"] : [];
    return { device: await adapter.requestDevice({ requiredFeatures }), gpu };
  } catch (e) {
    return { reason: (e as Error).message };
  }
}

const MATMUL_BOUND = 1e-5;
const EMBED_BOUND = 1e-7;

const dev = await openDevice();
const skip = dev.device ? false : `no WebGPU adapter: ${dev.reason}`;
const subgroups = !!dev.device?.features.has("subgroups");
after(() => dev.device?.destroy());

const LEGACY_SHAPES: [number, number][] = [[67, 32], [5, 96], [9, 2080]]; // 2080 = 65 units: more than 64 threads
const K_SHAPES: [number, number][] = [[37, 256], [3, 768], [2, 4352]]; // 4352 = 17 blocks = 136 units

/**
 * The kernels and where each is checked: the plain registered one (decode style, any T: 17 = 2 token tiles of
 * 8 + 1) and the thread style on every format; the reduction of the subgroup variant and the tiled prefill
 * kernel (T > 8: 40 = a full 32-token tile + 8) do not depend on the format's decoder, so two or three formats
 * cover them (each pipeline costs ~0.3–2 s to compile on SwiftShader, the prefill one several).
 */
const RUNS: { name: string; opts: RunOptions; tokens: number[]; formats?: BlockFormat[] }[] = [
  { name: "plain", opts: {}, tokens: [1, 3, 17] },
  { name: "thread", opts: { variant: { style: "thread" } }, tokens: [1, 17] },
  { name: "sg", opts: { variant: { subgroups: true } }, tokens: [1, 3, 8], formats: ["q4_1", "q6_k"] },
  { name: "prefill", opts: { variant: {} }, tokens: [17, 40], formats: ["q5_0", "q3_k", "q6_k"] },
];

export const PARITY: Record<string, number> = {};

for (const fmt of BLOCK_FORMATS) {
  test(`webgpu blocks: ${fmt} matmul = TS reference (odd shapes; decode, thread, subgroup, prefill kernels)`, { skip }, async () => {
    const r = rng(1000 + BLOCK_FORMATS.indexOf(fmt));
    const shapes = BLOCK_GEOMETRY[fmt].values === 32 ? LEGACY_SHAPES : K_SHAPES;
    const runs = RUNS.filter((k) => (!k.formats || k.formats.includes(fmt)) && (k.name !== "sg" || subgroups));
    for (const [rows, cols] of shapes) {
      const w = randBlockWeight(fmt, rows, cols, r);
      for (const T of [...new Set(runs.flatMap((k) => k.tokens))]) {
        const x = randArray(T * cols, r);
        const ref = new Float32Array(T * rows);
        tsBackend.matmul(ref, x, w, T);
        for (const k of runs.filter((k) => k.tokens.includes(T))) {
          const e = normErr(await runMatmul(dev.device!, w, x, T, k.opts), ref);
          const key = `${fmt} ${k.name} T=${T}`;
          PARITY[key] = Math.max(PARITY[key] ?? 0, e);
          assert.ok(e <= MATMUL_BOUND, `${fmt} [${rows}, ${cols}] T=${T} ${k.name}: normalized error ${e}`);
        }
      }
    }
  });
}

test("webgpu blocks: a weight split in row parts writes each part at its rowBase", { skip }, async () => {
  const r = rng(77);
  for (const fmt of ["q4_0", "q6_k"] as BlockFormat[]) {
    const cols = BLOCK_GEOMETRY[fmt].values * 3;
    const w = randBlockWeight(fmt, 23, cols, r);
    const T = 3;
    const x = randArray(T * cols, r);
    const ref = new Float32Array(T * w.rows);
    tsBackend.matmul(ref, x, w, T);
    const got = await runMatmul(dev.device!, w, x, T, { partRows: 7 }); // parts of 7, 7, 7, 2 rows
    assert.ok(normErr(got, ref) <= MATMUL_BOUND, `${fmt}: split parts, error ${normErr(got, ref)}`);
  }
});

test("webgpu blocks: rows on a 2-D grid (row = x + nx·y: how a 100k-row lm_head is dispatched)", { skip }, async () => {
  // splitGrid dispatches 32768 × ⌈rows / 32768⌉; the kernel reads nx from num_workgroups, so a 5-wide grid
  // checks the same mapping without 32768 workgroups (SwiftShader: ~0.1–1 ms each)
  const r = rng(78);
  // decode kernel: 23 rows on a 5 × 5 grid (2 spare); prefill: 150 rows = 3 tiles of 64 on 2 × 2 (1 spare);
  // thread style: 23 rows × 5 token tiles = 2 workgroups of 64 on a 1 × 2 grid
  const cases: [number, number, number, RunOptions["variant"]][] = [[23, 2, 5, undefined], [150, 33, 2, {}], [23, 40, 1, { style: "thread" }]];
  if (subgroups) cases.push([23, 2, 5, { subgroups: true }]);
  for (const [rows, T, gridX, variant] of cases) {
    const w = randBlockWeight("q6_k", rows, 256, r); // every variant of q6_k is compiled already
    const x = randArray(T * 256, r);
    const ref = new Float32Array(T * w.rows);
    tsBackend.matmul(ref, x, w, T);
    const got = await runMatmul(dev.device!, w, x, T, { gridX, variant });
    assert.ok(normErr(got, ref) <= MATMUL_BOUND, `rows ${rows} T=${T} ${JSON.stringify(variant)}: error ${normErr(got, ref)}`);
  }
});

/** Writes raw f16 bits into the first f16 field of some blocks (subnormal, tiny, largest finite scales). */
function withEdgeScales(w: Weight, fmt: BlockFormat): Weight {
  const { bytes, f16 } = BLOCK_GEOMETRY[fmt];
  const b = w.data as Uint8Array;
  const edge = [0x0001, 0x83ff, 0x0000, 0x8000, f32ToF16(6.1e-5), 0x7bff, 0xfbff];
  for (let i = 0; i < edge.length && (i + 1) * bytes <= b.length; i++) {
    b[i * bytes + f16[0]] = edge[i] & 255;
    b[i * bytes + f16[0] + 1] = edge[i] >> 8;
  }
  return w;
}

for (const fmt of BLOCK_FORMATS) {
  test(`webgpu blocks: ${fmt} embed rows = TS embedRow (edge f16 scales included)`, { skip }, async () => {
    const r = rng(2000 + BLOCK_FORMATS.indexOf(fmt));
    const cols = BLOCK_GEOMETRY[fmt].values * 9; // 9 blocks; legacy: 9 units, K: 72 units (> 64 threads)
    const w = withEdgeScales(randBlockWeight(fmt, 11, cols, r), fmt);
    const rows = [0, 1, 10, 5];
    const got = await runEmbed(dev.device!, w, rows, 4);
    const ref = new Float32Array(cols);
    for (let i = 0; i < rows.length; i++) {
      tsBackend.embedRow(ref, w, rows[i]);
      for (let c = 0; c < cols; c++) {
        const g = got[i * cols + c], e = ref[c];
        if (e !== 0) PARITY[`${fmt} embed`] = Math.max(PARITY[`${fmt} embed`] ?? 0, Math.abs(g - e) / Math.abs(e));
        assert.ok(Math.abs(g - e) <= EMBED_BOUND * Math.abs(e), `${fmt} row ${rows[i]} col ${c}: got ${g}, want ${e}`);
      }
    }
  });
}

test("webgpu blocks: a truncated or misshapen weight is refused before anything is dispatched", { skip }, async () => {
  const w = randBlockWeight("q5_k", 4, 512, rng(79));
  const short: Weight = { ...w, data: (w.data as Uint8Array).subarray(0, 3 * 2 * 176 + 5) };
  await assert.rejects(runMatmul(dev.device!, short, new Float32Array(512), 1), /q5_k \[4, 512\] needs 1408 bytes of blocks, has 1061/);
  await assert.rejects(runMatmul(dev.device!, { ...w, cols: 500 }, new Float32Array(500), 1), /whole blocks of 256 values, but it has 500 columns/);
  await assert.rejects(runEmbed(dev.device!, w, [4]), /row 4 is outside 0 … 3/);
  await assert.rejects(runMatmul(dev.device!, w, new Float32Array(1000), 2), /x has 1000 values, T = 2 tokens of 512 columns need 1024/);
});

test("webgpu blocks: every block format is registered with the core's registry", () => {
  for (const fmt of BLOCK_FORMATS) {
    const k = formatKernel(fmt);
    assert.ok(k && k.embed, `${fmt} not registered`);
    assert.deepEqual(k.workgroups(70000, 17), [32768, 3, 3]);
  }
});

after(() => {
  if (skip || process.env.XVERSE_PRINT_PARITY !== "1") return;
  const cols = [...RUNS.flatMap((k) => k.tokens.map((T) => `${k.name} T=${T}`)), "embed"];
  const lines = BLOCK_FORMATS.map((f) => `| ${f} | ${cols.map((c) => PARITY[`${f} ${c}`]?.toExponential(1) ?? "-").join(" | ")} |`);
  console.log(`| format | ${cols.join(" | ")} |\n|---|${cols.map(() => "---").join("|")}|\n${lines.join("\n")}`);
});
