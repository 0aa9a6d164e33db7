/**
 * What the server hands the browser front end: the three pages (one shell each, with the CSP), the bundle under
 * /web/, and the embedded model's files under /models/stories260K/ with HTTP Range (206 / 416 / HEAD), read
 * back through fetchReader exactly; nothing outside those folders is reachable. Also: the library part a tab
 * runs bundles for browsers (esbuild, platform "browser", which refuses `node:` imports).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { build } from "esbuild";
import type { RunningServer } from "../../src/server/http.js";
import { fetchReader } from "../../src/io/byte-reader.js";
import { defaultModelDir, packageRoot } from "../../src/model/embedded.js";
import { startTestServer } from "../server/helpers.js";
import { ensureBundle } from "./chromium.js";

describe("pages, bundle and model files over HTTP", () => {
  let srv: RunningServer;
  const model = readFileSync(join(defaultModelDir(), "model.safetensors"));
  before(async () => {
    ensureBundle();
    srv = await startTestServer({ concurrency: 1 });
  });
  after(() => srv?.close());
  const get = (path: string, headers: Record<string, string> = {}, method = "GET") => fetch(srv.url + path, { headers, method });

  it("pages: one shell per page over the same bundle, with a CSP that allows only this origin", async () => {
    for (const [path, page] of [["/", "chat"], ["/generate", "generate"], ["/local", "local"]]) {
      const r = await get(path);
      assert.equal(r.status, 200);
      assert.match(r.headers.get("content-security-policy")!, /script-src 'self'/);
      const html = await r.text();
      assert.match(html, new RegExp(`data-page="${page}"`));
      assert.match(html, /<script type="module" src="\/web\/app\.js">/);
    }
    const js = await get("/web/app.js");
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type")!, /javascript/);
    assert.equal((await js.arrayBuffer()).byteLength, readFileSync(join(packageRoot(), "dist", "web", "app.js")).length);
    assert.equal((await get("/web/nope.js")).status, 404);
    assert.equal((await get("/web/..%2Fsrc%2Findex.js")).status, 404);
    assert.equal((await get("/models/stories260K/..%2F..%2Fpackage.json")).status, 404);
    assert.equal((await get("/models/other/config.json")).status, 404);
  });

  it("model files answer Range requests: 206 with Content-Range, suffix ranges, 416, HEAD", async () => {
    const base = "/models/stories260K/model.safetensors";
    const whole = await get(base);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers.get("accept-ranges"), "bytes");
    assert.deepEqual(Buffer.from(await whole.arrayBuffer()), model);
    const r = await get(base, { Range: "bytes=8-15" });
    assert.equal(r.status, 206);
    assert.equal(r.headers.get("content-range"), `bytes 8-15/${model.length}`);
    assert.deepEqual(Buffer.from(await r.arrayBuffer()), model.subarray(8, 16));
    const tail = await get(base, { Range: "bytes=-4" });
    assert.deepEqual(Buffer.from(await tail.arrayBuffer()), model.subarray(model.length - 4));
    const open = await get(base, { Range: `bytes=${model.length - 3}-` });
    assert.equal(open.headers.get("content-range"), `bytes ${model.length - 3}-${model.length - 1}/${model.length}`);
    await open.arrayBuffer();
    const past = await get(base, { Range: `bytes=${model.length}-` });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get("content-range"), `bytes */${model.length}`);
    const head = await get(base, {}, "HEAD");
    assert.equal(head.headers.get("content-length"), String(model.length));

    // fetchReader: its size from the first 206, then exact slices
    const fr = await fetchReader(srv.url + base);
    assert.equal(fr.size, model.length);
    assert.deepEqual(Buffer.from(await fr.read(1000, 4096)), model.subarray(1000, 5096));
    await assert.rejects(fr.read(model.length - 2, 4), /lies outside/);
    await assert.rejects(fetchReader(srv.url + "/models/stories260K/missing.bin"), /HTTP 404/);
  });

  it("the browser entry points bundle for browsers (no Node built-ins below them)", async () => {
    for (const entry of ["src/browser/index.ts", "web/main.ts", "web/local-worker.ts"]) {
      const r = await build({ entryPoints: [join(packageRoot(), entry)], bundle: true, platform: "browser", format: "esm", write: false, logLevel: "silent" });
      assert.ok(r.outputFiles[0].contents.length > 10_000, entry);
    }
  });
});
