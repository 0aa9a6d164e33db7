/**
 * The block kernels through the WebGPU core (createWebGpuBackend: its weight upload, row-part splitting and
 * dispatch recorder), not the standalone runner of blocks.test.ts: matmul and embedRow vs the TS reference on
 * three formats with row sizes 18·k, 34·k and 210·k bytes (never 4-byte aligned), weights split in parts.
 * Bounds as in blocks.test.ts: matmul ≤ 1e-5 normalized, embed ≤ 1e-7 relative per value.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BLOCK_GEOMETRY, blockRowBytes, type BlockFormat } from "../../src/backend/ts/blocks.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { normErr, randArray, randBlockWeight, rng } from "../native/random.js";
import { gpuBackend } from "./gpu.js";

/**
 * The core picks the kernel per device and call (BlockFormatKernel.variant): on SwiftShader the "thread" style;
 * forced to "workgroup", the decode kernel at T = 1 (subgroupAdd when the adapter has subgroups) and the tiled
 * prefill kernel at T = 9. The workgroup style runs on one format (its code around decode_unit is shared).
 */
const CASES: [BlockFormat, "thread" | "workgroup"][] = [["q4_0", "thread"], ["q8_0", "thread"], ["q6_k", "thread"], ["q6_k", "workgroup"]];

for (const [fmt, style] of CASES) {
  test(`webgpu backend: ${fmt} weights in row parts, ${style} style: matmul and embedRow = TS reference`, async () => {
    const r = rng(3000 + CASES.findIndex((c) => c[0] === fmt && c[1] === style));
    const cols = BLOCK_GEOMETRY[fmt].values * 5;
    const rows = 29;
    // parts of 6 rows (the last one 5), each its own buffer: every dispatch but the first has rowBase ≠ 0
    const be = await gpuBackend({ maxPartBytes: 6 * blockRowBytes(fmt, cols) + 3, style });
    const w = randBlockWeight(fmt, rows, cols, r);
    for (const T of [1, 9]) {
      const x = randArray(T * cols, r);
      const ref = new Float32Array(T * rows);
      tsBackend.matmul(ref, x, w, T);
      const e = normErr(await be.kernels.matmul(x, w, T), ref);
      assert.ok(e <= 1e-5, `${fmt} ${style} T=${T}: normalized error ${e}`);
    }
    const ref = new Float32Array(cols);
    for (const row of [0, 6, 17, rows - 1]) {
      tsBackend.embedRow(ref, w, row);
      const got = await be.kernels.embedRow(w, row);
      for (let c = 0; c < cols; c++) {
        assert.ok(Math.abs(got[c] - ref[c]) <= 1e-7 * Math.abs(ref[c]), `${fmt} row ${row} col ${c}: ${got[c]} vs ${ref[c]}`);
      }
    }
  });
}
