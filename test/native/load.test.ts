/** Loading: fallback with one warning, thread control, and the addon inside worker_threads. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Worker } from "node:worker_threads";
import { selectBackend } from "../../src/backend/select.js";
import { loadNativeBackend, physicalCores, tryLoadNativeBackend } from "../../src/backend/native/index.js";
import { tsBackend } from "../../src/backend/ts/index.js";

const load = tryLoadNativeBackend();
const skip = load.backend ? false : `native addon not available: ${load.reason}`;

test("a missing addon gives null with a reason, and auto falls back to ts with one warning", () => {
  const r = tryLoadNativeBackend({ path: "/nonexistent/xverse_native.node" });
  assert.equal(r.backend, null);
  assert.match(r.reason ?? "", /not built/);
  assert.equal(loadNativeBackend({ path: "/nonexistent/xverse_native.node" }), null);
  const warnings: string[] = [];
  const b1 = selectBackend("auto", { path: "/nonexistent/x.node", warn: (m) => warnings.push(m) });
  const b2 = selectBackend("auto", { path: "/nonexistent/x.node", warn: (m) => warnings.push(m) });
  assert.equal(b1, tsBackend);
  assert.equal(b2, tsBackend);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /^native kernels unavailable \(.*\); using the TypeScript backend, expect ~.* slower$/);
  assert.throws(() => selectBackend("native", { path: "/nonexistent/x.node" }), /native kernels unavailable/);
  assert.equal(selectBackend("ts"), tsBackend);
});

test("physicalCores is at least 1 and at most the available parallelism", () => {
  const n = physicalCores();
  assert.ok(n >= 1);
});

test("native backend: auto selects it, threads can be changed", { skip }, () => {
  const b = load.backend!;
  assert.equal(selectBackend("auto").name, "native");
  assert.equal(b.setThreads(1), 1);
  assert.equal(b.threads, 1);
  assert.equal(b.setThreads(3), 3);
  assert.equal(b.setThreads(physicalCores()), physicalCores());
});

test("the addon loads and computes inside worker threads, each with its own pool", { skip }, async () => {
  const url = new URL("../../src/backend/native/index.js", import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    import(workerData.url).then(({ loadNativeBackend }) => {
      const b = loadNativeBackend({ threads: 2 });
      const rows = 300, cols = 256;
      const w = { format: "f32", rows, cols, data: new Float32Array(rows * cols).fill(0.5) };
      const x = new Float32Array(cols).fill(2);
      const y = new Float32Array(rows);
      for (let i = 0; i < 50; i++) b.matmul(y, x, w, 1);
      parentPort.postMessage({ y0: y[0], yl: y[rows - 1], isa: b.isa });
    });`;
  const run = () =>
    new Promise<{ y0: number; yl: number }>((res, rej) => {
      const wk = new Worker(code, { eval: true, workerData: { url } });
      wk.once("message", res);
      wk.once("error", rej);
    });
  const results = await Promise.all([run(), run(), run()]);
  for (const r of results) {
    assert.equal(r.y0, 256);
    assert.equal(r.yl, 256);
  }
});
