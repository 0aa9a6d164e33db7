/**
 * /local with models picked from disk. Quantized GGUF exports of stories260K (Q8_0, Q4_0, and q4_k_m, which on
 * this small model falls back to Q5_0 / Q8_0 blocks) and a random model with 256-wide rows as q4_k_m (real Q4_K /
 * Q6_K blocks) run in the tab with their block tensors as stored: the
 * page's #model-status data-formats lists the same weight formats, and its greedy text is the same, as this
 * library's Node loader gives on the TS backend for the same file (computed here: an independent path from the
 * bundle, with mapped files and its own TensorSource). On WebGPU (SwiftShader), switching models twice keeps
 * working, and the GPU buffers alive after a run are as many as after the same run before the switches (every
 * buffer is counted by wrapping GPUDevice.createBuffer / GPUBuffer.destroy / GPUDevice.destroy in the page; that
 * one runs the model in the tab, ?worker=0, where the wrappers see it). By default the model runs in a Web Worker:
 * there the page's main thread creates no GPU device at all, the same switches work, and with a model heavy
 * enough that every token is a long task (over 50 ms) in the tab, the main thread has none.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import type { RunningServer } from "../../src/server/http.js";
import { startTestServer } from "../server/helpers.js";
import { defaultModelDir } from "../../src/model/embedded.js";
import { exportGguf, type ExportType } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadConfig } from "../../src/config.js";
import { loadModel } from "../../src/model/load.js";
import { generateText } from "../../src/generate/generate.js";
import type { XverseModel } from "../../src/model/xverse.js";
import { parseConfig } from "../../src/config.js";
import type { TensorSource } from "../../src/io/source.js";
import { randomModelSource } from "../helpers/random-model.js";
import { launch, openPage, skip } from "./chromium.js";

declare const document: any; // eslint-disable-line @typescript-eslint/no-explicit-any

const PROMPT = "Once upon a time";
const TOKENS = 40;
const dir = defaultModelDir();
const SAFETENSORS = ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"].map((n) => join(dir, n));

/** "q8_0:32 f16:5": each weight format of the model's matrices and how many hold it, most first. */
function formatsOf(model: XverseModel): string {
  const w = model.weights;
  const counts = new Map<string, number>();
  for (const x of [w.embed, w.lmHead, ...w.layers.flatMap((l) => [l.q, l.k, l.v, l.o, l.gate, l.up, l.down])]) counts.set(x.format, (counts.get(x.format) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([f, n]) => `${f}:${n}`).join(" ");
}

/** What the Node library gives for `path` on the TS backend: the greedy text and the weights' formats. */
async function nodeReference(path: string, tokens = TOKENS): Promise<{ text: string; formats: string }> {
  const { model, tokenizer } = await loadModel(path, { backend: "ts", onWarning: () => {} });
  const r = await generateText(model, tokenizer, tokenizer.encode(PROMPT).ids, { greedy: true, maxNewTokens: tokens });
  return { text: PROMPT + r.text, formats: formatsOf(model) };
}

async function pick(page: Page, files: string | string[], name: string): Promise<void> {
  await page.setInputFiles("#model-file", files);
  await page.waitForSelector(`#model-status[data-model='${name}'][data-ready='1'], #model-status[data-ready='error']`, { timeout: 60_000 });
  assert.equal(await page.getAttribute("#model-status", "data-ready"), "1", (await page.textContent("#model-status"))!);
  assert.equal(await page.getAttribute("#model-status", "data-model"), name);
}

async function run(page: Page): Promise<string> {
  await page.click("#generate");
  await page.waitForSelector("#output[data-done='1'], #output[data-done='error']", { timeout: 60_000 });
  assert.equal(await page.getAttribute("#output", "data-done"), "1", (await page.textContent("#output"))!);
  return (await page.textContent("#output"))!;
}

/**
 * A random model with K-sized rows (hidden and intermediate multiples of 256) and stories260K's vocabulary, so
 * q4_k_m writes real Q4_K / Q6_K blocks (stories260K's 64-wide rows fall back to Q5_0 / Q8_0) and the prompt
 * still tokenizes.
 */
function randomKSource(H = 256, F = 512, layers = 2): { source: TensorSource; config: ReturnType<typeof parseConfig> } {
  const V = 512;
  const config = parseConfig({
    model_type: "llama", hidden_size: H, num_hidden_layers: layers, num_attention_heads: H / 64, num_key_value_heads: H / 64,
    intermediate_size: F, vocab_size: V, max_position_embeddings: 256, rms_norm_eps: 1e-5,
  }, "random-k");
  return { source: randomModelSource(config, 7, 1.5, "random-k"), config };
}

/** Counts live GPU buffers in the page (a destroyed device's buffers are gone with it). */
function countGpuBuffers(): void {
  const g = globalThis as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  if (!g.GPUDevice) return;
  const live = new Map<unknown, Set<unknown>>();
  const owner = new WeakMap<object, Set<unknown>>();
  const create = g.GPUDevice.prototype.createBuffer;
  g.GPUDevice.prototype.createBuffer = function (this: object, d: unknown) {
    const b = create.call(this, d);
    let s = live.get(this);
    if (!s) live.set(this, (s = new Set()));
    s.add(b);
    owner.set(b, s);
    return b;
  };
  const destroy = g.GPUBuffer.prototype.destroy;
  g.GPUBuffer.prototype.destroy = function (this: object) {
    owner.get(this)?.delete(this);
    return destroy.call(this);
  };
  const destroyDevice = g.GPUDevice.prototype.destroy;
  g.GPUDevice.prototype.destroy = function (this: object) {
    live.delete(this);
    return destroyDevice.call(this);
  };
  g.__gpuBuffers = () => ({ devices: live.size, buffers: [...live.values()].reduce((n, s) => n + s.size, 0) });
}

describe("/local: models picked from disk", { skip }, () => {
  let srv: RunningServer;
  let browser: Browser;
  let tmp: string;
  const exported = new Map<ExportType, string>();
  const gguf = (type: ExportType): string => {
    let p = exported.get(type);
    if (!p) {
      p = join(tmp, `stories260K-${type}.gguf`);
      exportGguf(openCheckpoint(dir), loadConfig(dir), join(dir, "tokenizer.json"), p, { type, arch: "llama" });
      exported.set(type, p);
    }
    return p;
  };
  const url = (tokens = TOKENS) => `${srv.url}/local?prompt=${encodeURIComponent(PROMPT)}&max_tokens=${tokens}&greedy=1`;
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "xverse-local-models-"));
    srv = await startTestServer({ concurrency: 1 });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it("quantized GGUF files keep their blocks in the tab and give the Node engine's greedy text", async (t) => {
    const { page, errors } = await openPage(browser, url(), { noWebGpu: true });
    await page.waitForSelector("#model-status[data-ready='1']");
    for (const type of ["q8_0", "q4_0", "q4_k_m"] as const) {
      const path = gguf(type);
      const ref = await nodeReference(path);
      // the blocks are the file's: no f32 matrices (stories260K's ffn_down, 172 columns, is f16 in every export)
      assert.doesNotMatch(ref.formats, /f32/, `${type}: ${ref.formats}`);
      await pick(page, path, `stories260K-${type}.gguf`);
      assert.equal(await page.getAttribute("#model-status", "data-formats"), ref.formats, type);
      assert.equal(await run(page), ref.text, type);
      t.diagnostic(`${type}: ${ref.formats}`);
    }
    // K-quant blocks proper: a random model with 256-wide rows as q4_k_m (Q4_K, Q6_K for output and one attn_v / ffn_down)
    const k = join(tmp, "random-q4_k_m.gguf");
    const { source, config } = randomKSource();
    exportGguf(source, config, join(dir, "tokenizer.json"), k, { type: "q4_k_m", arch: "llama" });
    const ref = await nodeReference(k);
    assert.match(ref.formats, /q4_k:\d+.*q6_k:\d+/, ref.formats);
    await pick(page, k, "random-q4_k_m.gguf");
    assert.equal(await page.getAttribute("#model-status", "data-formats"), ref.formats);
    assert.equal(await run(page), ref.text);
    t.diagnostic(`random q4_k_m: ${ref.formats}: ${JSON.stringify(ref.text.slice(0, 80))}`);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  it("WebGPU in the tab (?worker=0, so this page's GPU calls can be counted): switching models twice keeps working and frees the old model's GPU buffers", async (t) => {
    const gpuBrowser = await launch({ webgpu: true });
    try {
      const { page, errors } = await openPage(gpuBrowser, url() + "&worker=0", { init: countGpuBuffers });
      await page.waitForSelector("#model-status[data-ready='1']");
      assert.equal(await page.getAttribute("#backend", "data-backend"), "webgpu", (await page.textContent("#backend"))!);
      assert.equal(await page.getAttribute("#backend", "data-where"), "tab");
      assert.equal(page.workers().length, 0);
      const count = () => page.evaluate(() => (globalThis as unknown as { __gpuBuffers(): { devices: number; buffers: number } }).__gpuBuffers());
      const first = await run(page);
      const before = await count();
      assert.equal(before.devices, 1);
      assert.ok(before.buffers > 0);

      // a Q8_0 GGUF (blocks on the GPU), then the safetensors model again
      const q8 = gguf("q8_0");
      await pick(page, q8, "stories260K-q8_0.gguf");
      assert.equal(await page.getAttribute("#backend", "data-backend"), "webgpu", (await page.textContent("#backend"))!);
      assert.match((await page.getAttribute("#model-status", "data-formats"))!, /q8_0/);
      assert.equal(await run(page), (await nodeReference(q8)).text);
      const middle = await count();
      assert.equal(middle.devices, 1, "the first model's device was destroyed");

      await pick(page, SAFETENSORS, "model.safetensors");
      assert.equal(await run(page), first);
      const after = await count();
      assert.deepEqual(after, before, "the same model and run hold as many GPU buffers as before the switches");
      t.diagnostic(`live GPU buffers after a run: ${before.buffers} (safetensors), ${middle.buffers} (q8_0 GGUF), ${after.buffers} (safetensors again)`);
      assert.deepEqual(errors, []);
    } finally {
      await gpuBrowser.close();
    }
  });

  it("WebGPU in a Web Worker (the default): the page's main thread never touches the GPU; two switches work there too", async () => {
    const gpuBrowser = await launch({ webgpu: true });
    try {
      const { page, errors } = await openPage(gpuBrowser, url(), { init: countGpuBuffers });
      await page.waitForSelector("#model-status[data-ready='1']");
      assert.equal(await page.getAttribute("#backend", "data-backend"), "webgpu", (await page.textContent("#backend"))!);
      assert.equal(await page.getAttribute("#backend", "data-where"), "worker");
      assert.match((await page.textContent("#backend"))!, /in a Web Worker/);
      assert.deepEqual(page.workers().map((w) => new URL(w.url()).pathname), ["/web/local-worker.js"]);
      const mainThread = () => page.evaluate(() => (globalThis as unknown as { __gpuBuffers(): { devices: number; buffers: number } }).__gpuBuffers());
      const stories = await nodeReference(dir);
      assert.equal(await run(page), stories.text);
      const q8 = gguf("q8_0");
      await pick(page, q8, "stories260K-q8_0.gguf");
      assert.equal(await page.getAttribute("#backend", "data-backend"), "webgpu");
      assert.equal(await page.getAttribute("#model-status", "data-formats"), (await nodeReference(q8)).formats);
      assert.equal(await run(page), (await nodeReference(q8)).text);
      await pick(page, SAFETENSORS, "model.safetensors");
      assert.equal(await run(page), stories.text);
      assert.deepEqual(await mainThread(), { devices: 0, buffers: 0 }, "the model's GPU work is all in the worker");
      assert.deepEqual(errors, []);
    } finally {
      await gpuBrowser.close();
    }
  });

  it("the library's disposeModel frees a model's GPU weights on a backend that stays (dist/web/xverse.js)", async (t) => {
    const gpuBrowser = await launch({ webgpu: true });
    try {
      const { page, errors } = await openPage(gpuBrowser, srv.url + "/local?worker=0", { init: countGpuBuffers });
      await page.waitForSelector("#model-status[data-ready='1']");
      const r = await page.evaluate(async (n: number) => {
        const count = () => (globalThis as unknown as { __gpuBuffers(): { devices: number; buffers: number } }).__gpuBuffers().buffers;
        const lib = await import("/web/xverse.js" as string);
        const backend = await lib.createWebGpuBackend((globalThis as unknown as { navigator: { gpu: unknown } }).navigator.gpu);
        const before = count();
        const m = await lib.loadModelFiles(await lib.modelFilesAt("/models/stories260K/"), { backend });
        const out = await lib.generateText(m.model, m.tokenizer, m.tokenizer.encode("Once upon a time").ids, { greedy: true, maxNewTokens: n });
        const loaded = count();
        lib.disposeModel(m);
        return { before, loaded, disposed: count(), text: "Once upon a time" + out.text, layers: m.config.numLayers };
      }, TOKENS);
      assert.equal(r.text, (await nodeReference(dir)).text);
      // at least q, k, v, o, down per layer and lm_head (gate and up may be fused into one) come off the GPU
      assert.ok(r.loaded - r.disposed >= 5 * r.layers + 1, JSON.stringify(r));
      t.diagnostic(`GPU buffers: ${r.before} before the model, ${r.loaded} after a run, ${r.disposed} after disposeModel`);
      assert.deepEqual(errors, []);
    } finally {
      await gpuBrowser.close();
    }
  });

  it("a worker that cannot start (its script missing): the model runs in the tab, and the page says why", async () => {
    const { page, errors } = await openPage(browser, url(), {
      noWebGpu: true, setup: (p) => p.route("**/web/local-worker.js", (r) => r.fulfill({ status: 404, body: "" })),
    });
    await page.waitForSelector("#model-status[data-ready='1']");
    assert.equal(await page.getAttribute("#backend", "data-where"), "tab");
    assert.match((await page.textContent("#backend"))!, /in the page: the model worker failed/);
    assert.equal(await run(page), (await nodeReference(dir)).text);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  it("a heavier model (random, 1024 wide, Q8_0): the page's main thread has no long tasks while the worker generates; in the tab it has", async (t) => {
    const path = join(tmp, "random-1024-q8_0.gguf");
    const { source, config } = randomKSource(1024, 2048, 3);
    exportGguf(source, config, join(dir, "tokenizer.json"), path, { type: "q8_0", arch: "llama" });
    const N = 12;
    const ref = await nodeReference(path, N);
    /** Long tasks (over 50 ms) on the page's main thread while it generates N tokens with the model. */
    const longTasks = async (where: "worker" | "tab"): Promise<number[]> => {
      const { page, errors } = await openPage(browser, url(N) + (where === "tab" ? "&worker=0" : ""), { noWebGpu: true });
      await page.waitForSelector("#model-status[data-ready='1']");
      assert.equal(await page.getAttribute("#backend", "data-where"), where);
      await pick(page, path, "random-1024-q8_0.gguf");
      await page.evaluate(() => {
        const g = globalThis as unknown as { __long: number[]; PerformanceObserver: new (f: (l: { getEntries(): { duration: number }[] }) => void) => { observe(o: object): void } };
        g.__long = [];
        new g.PerformanceObserver((l) => { for (const e of l.getEntries()) g.__long.push(Math.round(e.duration)); }).observe({ type: "longtask" });
      });
      assert.equal(await run(page), ref.text, where);
      const long = await page.evaluate(() => (globalThis as unknown as { __long: number[] }).__long);
      assert.deepEqual(errors, []);
      await page.context().close();
      return long;
    };
    const tab = await longTasks("tab");
    const worker = await longTasks("worker");
    t.diagnostic(`main-thread long tasks over ${N} tokens: in the tab ${tab.length} (longest ${Math.max(0, ...tab)} ms), with the worker ${worker.length} (longest ${Math.max(0, ...worker)} ms)`);
    // the control: in the tab each token is one task of model work, most of them long
    assert.ok(tab.length >= N / 2, `in the tab: ${tab.length} long tasks`);
    assert.ok(worker.length <= 2, `with the worker: ${worker.length} long tasks (${worker.join(", ")} ms)`);
  });

  it("picking a model while a generation runs stops it and loads the new one; two quick picks end on the second", async () => {
    const { page, errors } = await openPage(browser, url(), { noWebGpu: true });
    await page.waitForSelector("#model-status[data-ready='1']");
    await page.locator("#max_new_tokens").fill("100000");
    await page.click("#generate");
    await page.waitForFunction(() => document.getElementById("output").textContent.length > 40);
    const path = gguf("q4_0");
    await pick(page, path, "stories260K-q4_0.gguf");
    await page.waitForSelector("#output[data-done='1']");
    await page.locator("#max_new_tokens").fill(String(TOKENS));
    assert.equal(await run(page), (await nodeReference(path)).text);
    // two files picked back to back: loads run one at a time, the last pick is the model that stays
    await page.setInputFiles("#model-file", gguf("q8_0"));
    await pick(page, gguf("q4_k_m"), "stories260K-q4_k_m.gguf");
    assert.equal(await page.getAttribute("#model-status", "data-formats"), (await nodeReference(gguf("q4_k_m"))).formats);
    assert.equal(await run(page), (await nodeReference(gguf("q4_k_m"))).text);
    assert.deepEqual(errors, []);
    await page.context().close();
  });
});
