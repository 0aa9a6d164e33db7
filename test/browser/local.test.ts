/**
 * /local in headless Chromium: the model runs in the tab. stories260K, loaded from the server with Range
 * requests, gives its golden greedy continuation of "Once upon a time" (llama2.c run.c's ids) on the TS backend
 * with WebGPU unavailable, and on WebGPU (SwiftShader); a GGUF export of it picked through the file input gives
 * the same text; and dist/web works as a plain static folder, from a server that knows nothing of Range.
 * Each run's tokens/s is reported as a test diagnostic.
 */
import assert from "node:assert/strict";
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import type { RunningServer } from "../../src/server/http.js";
import { startTestServer } from "../server/helpers.js";
import { fixture } from "../helpers/peers.js";
import { defaultModelDir, packageRoot } from "../../src/model/embedded.js";
import { exportGguf } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadConfig } from "../../src/config.js";
import { launch, openPage, skip } from "./chromium.js";

declare const document: any; // eslint-disable-line @typescript-eslint/no-explicit-any

const golden = JSON.parse(readFileSync(fixture("golden", "stories260K", "golden.json"), "utf8")).generate.once;
const PROMPT = "Once upon a time";
const autorun = `?autorun=1&prompt=${encodeURIComponent(PROMPT)}&max_tokens=${golden.greedy.length}&greedy=1`;

async function finished(page: Page): Promise<{ text: string; backend: string; rate: string; reason: string }> {
  await page.waitForSelector("#output[data-done='1'], #output[data-done='error']", { timeout: 60_000 });
  assert.equal(await page.getAttribute("#output", "data-done"), "1", (await page.textContent("#model-status"))!);
  return {
    text: (await page.textContent("#output"))!,
    backend: (await page.getAttribute("#backend", "data-backend"))!,
    reason: (await page.textContent("#backend"))!,
    rate: (await page.getAttribute("#stats", "data-tokens-per-second"))!,
  };
}

describe("/local: the model in a Chromium tab", { skip }, () => {
  let srv: RunningServer;
  let browser: Browser;
  before(async () => {
    srv = await startTestServer({ concurrency: 1 });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  it("TS backend (WebGPU unavailable): stories260K's golden greedy continuation", async (t) => {
    const { page, errors } = await openPage(browser, srv.url + "/local" + autorun, { noWebGpu: true });
    const r = await finished(page);
    assert.equal(r.text, golden.text);
    assert.equal(r.backend, "ts");
    assert.match(r.reason, /TypeScript — WebGPU is not available in this browser/);
    assert.match((await page.textContent("#model-status"))!, /model\.safetensors \(safetensors\): 5 layers/);
    assert.deepEqual(errors, []);
    t.diagnostic(`TS backend in the tab: ${r.rate} tokens/s (${golden.greedy.length} tokens)`);
    await page.context().close();
  });

  it("the library bundle (dist/web/xverse.js) imported by a page of one's own: the same continuation", async () => {
    const { page, errors } = await openPage(browser, srv.url + "/local", { noWebGpu: true });
    const text = await page.evaluate(async (n: number) => {
      const lib = await import("/web/xverse.js" as string);
      const m = await lib.loadModelFiles(await lib.modelFilesAt("/models/stories260K/"), { backend: lib.tsBackend });
      const r = await lib.generateText(m.model, m.tokenizer, m.tokenizer.encode("Once upon a time").ids, { greedy: true, maxNewTokens: n });
      return "Once upon a time" + r.text;
    }, golden.greedy.length);
    assert.equal(text, golden.text);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  it("WebGPU (SwiftShader): the same golden continuation", async (t) => {
    const gpuBrowser = await launch({ webgpu: true });
    try {
      const { page, errors } = await openPage(gpuBrowser, srv.url + "/local" + autorun);
      const r = await finished(page);
      assert.equal(r.backend, "webgpu", r.reason);
      assert.match(r.reason, /WebGPU on .*swiftshader/i);
      assert.equal(r.text, golden.text);
      assert.deepEqual(errors, []);
      t.diagnostic(`WebGPU (SwiftShader) in the tab: ${r.rate} tokens/s; ${r.reason}`);
    } finally {
      await gpuBrowser.close();
    }
  });

  it("chat in the tab: the same greedy reply as the server's API; Stop cuts a long generation", async () => {
    const { page, errors } = await openPage(browser, srv.url + "/local?tab=chat", { noWebGpu: true });
    await page.waitForSelector("#model-status[data-ready='1']");
    const api = await (await fetch(srv.url + "/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "Hello" }], temperature: 0, max_tokens: 40 }),
    })).json() as { choices: { message: { content: string } }[] };
    // (the chat view's ids carry "chat-" here: the generation view shares the page)
    await page.click("#panel-chat details.settings summary");
    await page.fill("#chat-temperature", "0");
    await page.fill("#chat-max_tokens", "40");
    await page.fill("#chat-input", "Hello");
    await page.click("#chat-send");
    await page.waitForFunction(() => !document.getElementById("chat-send").disabled && document.querySelectorAll(".msg.assistant:not(.pending)").length === 1);
    const words = (t: string) => t.replace(/\s+/g, " ").trim();
    assert.equal(words(await page.innerText(".msg.assistant .body")), words(api.choices[0].message.content));
    assert.match((await page.textContent(".msg.assistant .actions"))!, /tokens · [\d.]+ tok\/s/);

    // Stop: a greedy run of 512 tokens, cut at its first text, ends with fewer tokens than the full run
    await page.click("#tab-generate");
    await page.fill("#prompt", PROMPT);
    await page.locator("#max_new_tokens").fill("512");
    await page.locator("#temperature").fill("0");
    const tokens = async () => Number(/(\d+) tokens/.exec((await page.textContent("#stats"))!)![1]);
    await page.click("#generate");
    const full = (await finished(page), await tokens());
    await page.click("#generate");
    await page.waitForFunction(() => document.getElementById("output").textContent.length > 20);
    await page.click("#stop");
    await finished(page);
    const cut = await tokens();
    assert.ok(cut < full, `stopped after ${cut} of ${full} tokens`);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  it("a GGUF, then a safetensors with its JSON files, picked through the file input run", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "xverse-local-gguf-"));
    try {
      const dir = defaultModelDir();
      const file = join(tmp, "stories260K-f32.gguf");
      exportGguf(openCheckpoint(dir), loadConfig(dir), join(dir, "tokenizer.json"), file, { type: "f32", arch: "llama" });
      const { page, errors } = await openPage(browser, `${srv.url}/local?prompt=${encodeURIComponent(PROMPT)}&max_tokens=${golden.greedy.length}&greedy=1`, { noWebGpu: true });
      await page.waitForSelector("#model-status[data-ready='1']");
      await page.setInputFiles("#model-file", file);
      await page.waitForSelector("#model-status[data-model='stories260K-f32.gguf'][data-ready='1']");
      assert.match((await page.textContent("#model-status"))!, /\(gguf\)/);
      await page.click("#generate");
      assert.equal((await finished(page)).text, golden.text);
      // a .safetensors picked together with its JSON files runs too
      await page.setInputFiles("#model-file", ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"].map((n) => join(dir, n)));
      await page.waitForSelector("#model-status[data-model='model.safetensors'][data-ready='1']");
      await page.click("#generate");
      assert.equal((await finished(page)).text, golden.text);
      // a .safetensors without its config.json is refused with a message, and the page stays usable
      await page.setInputFiles("#model-file", join(dir, "model.safetensors"));
      await page.waitForSelector("#model-status[data-ready='error']");
      assert.match((await page.textContent("#model-status"))!, /needs its config\.json/);
      assert.deepEqual(errors, []);
      await page.context().close();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("dist/web as a static folder (a server without Range support) runs /local", async () => {
    // a minimal static server: GET only, always 200 with the whole file
    const root = join(packageRoot(), "dist", "web");
    const server: Server = createServer((req, res) => {
      const rel = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname)).replace(/^[/\\]+/, "") || "index.html";
      const p = join(root, rel);
      if (!p.startsWith(root) || !existsSync(p) || !statSync(p).isFile()) { res.writeHead(404).end(); return; }
      const type = p.endsWith(".html") ? "text/html" : p.endsWith(".js") ? "text/javascript" : p.endsWith(".css") ? "text/css" : "application/octet-stream";
      res.writeHead(200, { "Content-Type": type, "Content-Length": statSync(p).size });
      createReadStream(p).pipe(res);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/local.html${autorun}`;
      const { page, errors } = await openPage(browser, url, { noWebGpu: true });
      assert.equal((await finished(page)).text, golden.text);
      assert.equal(await page.getAttribute("#backend", "data-where"), "worker", "the worker script loads from the static folder too");
      assert.equal(await page.locator("header nav").count(), 0, "no links to server pages in the static copy");
      assert.deepEqual(errors, []);
      await page.context().close();
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
