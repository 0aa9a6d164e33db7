import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { detectCheckpoint, hfCacheRepoDir, isSkippedTensor, openCheckpoint } from "../../src/io/checkpoint.js";
import { openTorchBin } from "../../src/io/torch-bin.js";
import { XverseError } from "../../src/errors.js";
import { f32ToBf16, type Tensor } from "../../src/tensor.js";
import { fixture } from "../helpers/peers.js";

const tmp = mkdtempSync(join(tmpdir(), "xverse-ckpt-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const bytes = (t: Tensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
const golden = (d: string) => fixture("golden", d);

function rejects(fn: () => unknown, pattern: RegExp, ...mustName: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof XverseError, `expected XverseError, got ${e}`);
    assert.match(e.message, pattern);
    for (const s of mustName) assert.ok(e.message.includes(s), `message names ${s}: ${e.message}`);
    return true;
  });
}

test("layouts are detected in priority order", () => {
  assert.equal(detectCheckpoint(golden("tiny-xverse")).kind, "safetensors");
  assert.equal(detectCheckpoint(golden("tiny-xverse-bf16-sharded")).kind, "safetensors-sharded");
  assert.equal(detectCheckpoint(golden("tiny-xverse-bin")).kind, "bin-sharded");
});

test("bin shards and bf16 safetensors shards give identical tensors, equal to model.safetensors rounded to bf16", () => {
  const f32 = openCheckpoint(golden("tiny-xverse"));
  const bin = openCheckpoint(golden("tiny-xverse-bin"));
  const st = openCheckpoint(golden("tiny-xverse-bf16-sharded"));
  const names = [...f32.names()].sort();
  assert.equal(names.length, 30); // embed, lm_head, final norm + 9 per layer × 3
  assert.deepEqual([...bin.names()].sort(), names);
  assert.deepEqual([...st.names()].sort(), names);
  let elements = 0;
  for (const name of names) {
    const ref = f32.read(name), a = bin.read(name), b = st.read(name);
    assert.equal(ref.dtype, "f32");
    assert.equal(a.dtype, "bf16", name);
    assert.equal(b.dtype, "bf16", name);
    assert.deepEqual(a.shape, ref.shape, name);
    assert.deepEqual(b.shape, ref.shape, name);
    assert.ok(bytes(a).equals(bytes(b)), `${name}: .bin and safetensors shards differ`);
    const r = ref.data as Float32Array, x = a.data as Uint16Array;
    for (let i = 0; i < r.length; i++) if (f32ToBf16(r[i]) !== x[i]) assert.fail(`${name}[${i}]: bf16(${r[i]}) != 0x${x[i].toString(16)}`);
    elements += r.length;
    assert.equal(bin.info(name).dtype, "bf16");
    assert.match(st.info(name).file, /model-0000[12]-of-00002\.safetensors$/);
  }
  assert.equal(elements, 476784); // index total_size 953568 bytes / 2
  for (const s of [f32, bin, st]) s.close();
  // The index file itself stands for its directory.
  const viaIndex = openCheckpoint(join(golden("tiny-xverse-bin"), "pytorch_model.bin.index.json"));
  assert.deepEqual([...viaIndex.names()].sort(), names);
  viaIndex.close();
});

test("stale rotary_emb.inv_freq is present in the shard but skipped on purpose by openCheckpoint", () => {
  const name = "model.layers.0.self_attn.rotary_emb.inv_freq";
  const shard = openTorchBin(join(golden("tiny-xverse-bin"), "pytorch_model-00001-of-00002.bin"));
  assert.ok(shard.has(name)); // the raw reader sees it…
  shard.close();
  const ck = openCheckpoint(golden("tiny-xverse-bin"));
  assert.equal(ck.has(name), false); // …the checkpoint hides it
  assert.ok(!ck.names().some((n) => n.includes("rotary_emb")));
  rejects(() => ck.read(name), /no tensor named "model\.layers\.0\.self_attn\.rotary_emb\.inv_freq"/);
  ck.close();
  // A single-file checkpoint hides it too.
  const single = openCheckpoint(join(golden("tiny-xverse-bin"), "pytorch_model-00001-of-00002.bin"));
  assert.equal(single.has(name), false);
  single.close();
  assert.ok(isSkippedTensor("model.layers.31.self_attn.rotary_emb.cos_cached"));
  assert.ok(isSkippedTensor("model.layers.31.self_attn.rotary_emb.sin_cached"));
  assert.ok(!isSkippedTensor("model.layers.31.self_attn.q_proj.weight"));
});

/** A copy of a golden directory in tmp that a test may damage. */
function copyDir(src: string, name: string): string {
  const dst = join(tmp, name);
  mkdirSync(dst);
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(dst, f));
  return dst;
}

test("an index naming a missing shard is an error naming the shard and the index file", () => {
  const dir = copyDir(golden("tiny-xverse-bf16-sharded"), "missing-shard");
  rmSync(join(dir, "model-00002-of-00002.safetensors"));
  rejects(() => openCheckpoint(dir), /names shard model-00002-of-00002\.safetensors, which is missing/,
    join(dir, "model.safetensors.index.json"));
  const bdir = copyDir(golden("tiny-xverse-bin"), "missing-bin-shard");
  rmSync(join(bdir, "pytorch_model-00001-of-00002.bin"));
  rejects(() => openCheckpoint(bdir), /names shard pytorch_model-00001-of-00002\.bin, which is missing/,
    join(bdir, "pytorch_model.bin.index.json"));
});

test("index problems: a tensor its shard lacks, a shard path escaping the directory, invalid JSON, no weight_map", () => {
  const dir = copyDir(golden("tiny-xverse-bf16-sharded"), "bad-index");
  const indexPath = join(dir, "model.safetensors.index.json");
  const index = JSON.parse(readFileSync(indexPath, "utf8"));
  index.weight_map["model.norm.weight"] = "model-00001-of-00002.safetensors";
  const wrongShard = Object.keys(index.weight_map).find((n) => index.weight_map[n] === "model-00002-of-00002.safetensors"
    && n !== "model.norm.weight")!;
  index.weight_map[wrongShard] = "model-00001-of-00002.safetensors";
  writeFileSync(indexPath, JSON.stringify(index));
  const ck = openCheckpoint(dir);
  rejects(() => ck.read(wrongShard), /says tensor ".*" is in model-00001-of-00002\.safetensors, but .* does not contain it/, wrongShard);
  ck.close();
  index.weight_map[wrongShard] = "../tiny-xverse/model.safetensors";
  writeFileSync(indexPath, JSON.stringify(index));
  rejects(() => openCheckpoint(dir), /is "\.\.\/tiny-xverse\/model\.safetensors", not a shard file name/, indexPath);
  writeFileSync(indexPath, "{ not json");
  rejects(() => openCheckpoint(dir), /cannot read the shard index/, indexPath);
  writeFileSync(indexPath, JSON.stringify({ metadata: {} }));
  rejects(() => openCheckpoint(dir), /no "weight_map" object/, indexPath);
});

test("a directory without weights, a missing directory, and a file that is not a directory are clear errors", () => {
  const empty = join(tmp, "empty");
  mkdirSync(empty);
  writeFileSync(join(empty, "config.json"), "{}");
  rejects(() => openCheckpoint(empty),
    /no model\.safetensors, model\.safetensors\.index\.json, pytorch_model\.bin\.index\.json or pytorch_model\.bin in /, empty);
  rejects(() => openCheckpoint(join(tmp, "nope")), /checkpoint directory .* does not exist/, join(tmp, "nope"));
  rejects(() => detectCheckpoint(join(empty, "config.json")), /is not a directory/);
});

test("a single pytorch_model.bin directory works, and model.safetensors wins over .bin when both exist", () => {
  const dir = join(tmp, "single-bin");
  mkdirSync(dir);
  copyFileSync(join(golden("tiny-xverse-bin"), "pytorch_model-00002-of-00002.bin"), join(dir, "pytorch_model.bin"));
  const ck = openCheckpoint(dir);
  assert.equal(detectCheckpoint(dir).kind, "bin");
  const shard = openCheckpoint(golden("tiny-xverse-bf16-sharded"));
  for (const n of ck.names()) assert.ok(bytes(ck.read(n)).equals(bytes(shard.read(n))), n);
  ck.close();
  shard.close();
  copyFileSync(join(golden("tiny-xverse"), "model.safetensors"), join(dir, "model.safetensors"));
  assert.equal(detectCheckpoint(dir).kind, "safetensors");
});

test("a Hugging Face cache repo folder resolves through refs/main to its snapshot (files are symlinks to blobs)", () => {
  const repo = hfCacheRepoDir(join(tmp, "hub"), "xverse/tiny");
  assert.equal(repo, join(tmp, "hub", "models--xverse--tiny"));
  const src = golden("tiny-xverse-bf16-sharded");
  mkdirSync(join(repo, "blobs"), { recursive: true });
  mkdirSync(join(repo, "refs"));
  mkdirSync(join(repo, "snapshots", "old"), { recursive: true });
  mkdirSync(join(repo, "snapshots", "c0ffee"));
  writeFileSync(join(repo, "refs", "main"), "c0ffee\n");
  for (const f of readdirSync(src)) {
    copyFileSync(join(src, f), join(repo, "blobs", `blob-${f}`));
    symlinkSync(join("..", "..", "blobs", `blob-${f}`), join(repo, "snapshots", "c0ffee", f));
  }
  const layout = detectCheckpoint(repo);
  assert.equal(layout.kind, "safetensors-sharded");
  assert.equal(layout.dir, join(repo, "snapshots", "c0ffee"));
  const ck = openCheckpoint(repo), ref = openCheckpoint(src);
  assert.deepEqual(ck.names(), ref.names());
  for (const n of ref.names()) assert.ok(bytes(ck.read(n)).equals(bytes(ref.read(n))), n);
  ck.close();
  ref.close();
  rmSync(join(repo, "refs", "main"));
  rejects(() => openCheckpoint(repo), /Hugging Face cache folder with 2 snapshots \((old, c0ffee|c0ffee, old)\)/);
});
