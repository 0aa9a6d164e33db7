/**
 * The browser loader (src/browser/load.ts) in Node, which has Blob and fetch too: stories260K from Blobs gives
 * the golden greedy continuation; a GGUF export of it read from a Blob gives the same ids; the byte readers
 * check their ranges; picked files are sorted by name, and a .safetensors without config.json is refused.
 */
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { blobReader, bytesReader, loadModelFiles, modelFilesFrom, tsBackend, generateText, XverseError } from "../../src/browser/index.js";
import { defaultModelDir } from "../../src/model/embedded.js";
import { exportGguf } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadConfig } from "../../src/config.js";
import { fileReader } from "../../src/io/byte-reader-node.js";
import { fixture } from "../helpers/peers.js";

const golden = JSON.parse(readFileSync(fixture("golden", "stories260K", "golden.json"), "utf8")).generate.once;
const dir = defaultModelDir();
const blob = (name: string) => blobReader(new Blob([readFileSync(join(dir, name))]), name);

test("stories260K from Blobs: the golden greedy continuation of \"Once upon a time\"", async () => {
  const names = ["model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"];
  const files = modelFilesFrom(names.map(blob));
  let last = 0;
  const m = await loadModelFiles(files, { backend: tsBackend, onProgress: (d, t) => { assert.ok(d <= t); last = d / t; } });
  assert.equal(last, 1);
  assert.equal(m.format, "safetensors");
  const ids = m.tokenizer.encode("Once upon a time").ids;
  assert.deepEqual(ids, golden.prompt);
  const r = await generateText(m.model, m.tokenizer, ids, { greedy: true, maxNewTokens: golden.greedy.length });
  assert.deepEqual(r.ids, golden.greedy);
  assert.equal("Once upon a time" + r.text, golden.text);
  assert.equal(m.settings.addBosToken, true);
});

test("a GGUF export of stories260K, read through a Blob, gives the same greedy ids", async () => {
  const tmp = mkdtempSync(join(tmpdir(), "xverse-browser-gguf-"));
  try {
    const path = join(tmp, "stories260K-f32.gguf");
    exportGguf(openCheckpoint(dir), loadConfig(dir), join(dir, "tokenizer.json"), path, { type: "f32", arch: "llama" });
    const fr = await fileReader(path);
    const bytes = await fr.read(0, fr.size);
    await fr.close();
    const m = await loadModelFiles(modelFilesFrom([blobReader(new Blob([bytes]), "stories260K-f32.gguf")]), { backend: tsBackend });
    assert.equal(m.format, "gguf");
    const r = await generateText(m.model, m.tokenizer, golden.prompt, { greedy: true, maxNewTokens: golden.greedy.length });
    assert.deepEqual(r.ids, golden.greedy);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("byte readers: exact ranges, out-of-range reads refused; picked files sorted by name", async () => {
  const r = bytesReader(new Uint8Array([1, 2, 3, 4, 5]), "x.bin");
  assert.deepEqual([...await r.read(1, 3)], [2, 3, 4]);
  await assert.rejects(r.read(3, 3), /x\.bin: read of 3 bytes at 3 lies outside the 5-byte file/);
  const b = blobReader(new Blob([new Uint8Array([9, 8, 7])]), "y.bin");
  assert.deepEqual([...await b.read(1, 2)], [8, 7]);
  assert.throws(() => modelFilesFrom([bytesReader(new Uint8Array(1), "config.json")]), /pick one \.gguf file/);
  await assert.rejects(
    loadModelFiles(modelFilesFrom([blob("model.safetensors"), blob("tokenizer.json")]), { backend: tsBackend }),
    (e: unknown) => e instanceof XverseError && /needs its config\.json/.test(e.message),
  );
});
