// A GGUF repository as the Hub has them: several quantizations, one cut into byte-split parts. --include of one
// part brings the set; --model REPO:TAG loads it through the snapshot's links, with the same tokens as the source.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exportGguf } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadConfig } from "../../src/config.js";
import { defaultModelDir } from "../../src/model/embedded.js";
import { loadModel } from "../../src/model/load.js";
import { generateText } from "../../src/generate/generate.js";
import { pull } from "../../src/hub/pull.js";
import { HfHub } from "../../src/hub/hf.js";
import { resolveModelArg } from "../../src/cli/hub-env.js";
import { XverseError } from "../../src/errors.js";
import { FixtureHub } from "./fixture-server.js";

test("a byte-split GGUF comes down as a set and loads by REPO:TAG; several GGUFs need the TAG", async () => {
  const work = mkdtempSync(join(tmpdir(), "xverse-ggufrepo-"));
  const dir = defaultModelDir();
  const write = (type: "f32" | "q8_0") => {
    const out = join(work, `stories260K-${type}.gguf`);
    const src = openCheckpoint(dir);
    try { exportGguf(src, loadConfig(dir), join(dir, "tokenizer.json"), out, { type }); } finally { src.close(); }
    return readFileSync(out);
  };
  const f32 = write("f32"), q8 = write("q8_0");
  const half = Math.floor(f32.length / 2);
  const hub = await new FixtureHub("tiny-org/stories260K-GGUF", "a".repeat(40), [
    { path: "README.md", data: new TextEncoder().encode("# GGUF\n") },
    { path: "stories260K-F32.gguf.aa", data: f32.subarray(0, half), lfs: true },
    { path: "stories260K-F32.gguf.ab", data: f32.subarray(half), lfs: true },
    { path: "stories260K-Q8_0.gguf", data: q8, lfs: true },
  ]).start();
  try {
    const cacheDir = join(work, "cache");
    const source = new HfHub({ endpoint: hub.url, retry: { backoffMs: 1 } });
    const r = await pull("tiny-org/stories260K-GGUF", { cacheDir, source, include: ["*F32.gguf.ab"] });
    assert.deepEqual(r.selected.map((f) => f.path), ["stories260K-F32.gguf.aa", "stories260K-F32.gguf.ab"], "the other part came along");
    const path = await resolveModelArg("tiny-org/stories260K-GGUF", { env: { cacheDir } });
    assert.equal(path, join(r.snapshotDir, "stories260K-F32.gguf"), "the stem of the byte-split parts");

    const opts = { backend: "ts" as const, onWarning: () => {} };
    const a = await loadModel(path, opts), b = await loadModel(dir, opts);
    const ids = b.tokenizer.encode("Once upon a time").ids;
    const ga = await generateText(a.model, a.tokenizer, ids, { greedy: true, maxNewTokens: 10 });
    const gb = await generateText(b.model, b.tokenizer, ids, { greedy: true, maxNewTokens: 10 });
    assert.deepEqual(ga.ids, gb.ids, "f32 GGUF through the cache links = the safetensors model");

    // --pull with no TAG on a repository of several GGUFs stops before downloading anything; a TAG fetches one set
    const fresh = join(work, "fresh");
    hub.reset();
    await assert.rejects(resolveModelArg("tiny-org/stories260K-GGUF", { env: { cacheDir: fresh, hfEndpoint: hub.url }, pull: true }),
      (e: XverseError) => e.code === "ambiguous_model" && /holds 2 GGUF models; pick one with tiny-org\/stories260K-GGUF:TAG.*nothing was downloaded/s.test(e.message));
    assert.deepEqual(hub.fileRequests(), []);
    const viaTag = await resolveModelArg("tiny-org/stories260K-GGUF:f32", { env: { cacheDir: fresh, hfEndpoint: hub.url }, pull: true });
    assert.equal(viaTag, join(fresh, "models--tiny-org--stories260K-GGUF", "snapshots", "a".repeat(40), "stories260K-F32.gguf"));
    assert.deepEqual(hub.log.filter((e) => e.url.includes("/resolve/")).map((e) => e.url.split("/").pop()).sort(), ["stories260K-F32.gguf.aa", "stories260K-F32.gguf.ab"]);
    // cached without the Q8_0: with --pull the TAG fetches it, without it says how
    await assert.rejects(resolveModelArg("tiny-org/stories260K-GGUF:q8_0", { env: { cacheDir: fresh } }), /no cached GGUF file's name contains "q8_0"/);
    assert.match((await resolveModelArg("tiny-org/stories260K-GGUF:q8_0", { env: { cacheDir: fresh, hfEndpoint: hub.url }, pull: true }))!, /stories260K-Q8_0\.gguf$/);

    await pull("tiny-org/stories260K-GGUF", { cacheDir, source, include: ["*Q8_0*"] });
    await assert.rejects(resolveModelArg("tiny-org/stories260K-GGUF", { env: { cacheDir } }),
      (e: XverseError) => e.code === "ambiguous_model" && /2 GGUF models; pick one with tiny-org\/stories260K-GGUF:TAG, e\.g\. tiny-org\/stories260K-GGUF:F32/.test(e.message));
    assert.equal(await resolveModelArg("tiny-org/stories260K-GGUF:q8_0", { env: { cacheDir } }), join(r.snapshotDir, "stories260K-Q8_0.gguf"));
  } finally {
    await hub.stop();
    rmSync(work, { recursive: true, force: true });
  }
});
