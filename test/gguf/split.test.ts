/**
 * Byte-split GGUF files (x.gguf.aa, .ab, … as `split -b` cuts them; XVERSE's 65B release ships this way) open as
 * one file: cut at odd offsets — inside the header and inside tensors — they read the same header, the same tensor
 * bytes and the same logits as the joined file, mapped or read, through the library and the CLI (first part or
 * stem). gguf-split files (-0000K-of-0000N.gguf) still load, mapped. Hostile twins (a missing, truncated, oversized
 * or directory part; a later part or a stem without its first part) fail with one clear line naming the part.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { XverseError } from "../../src/errors.js";
import { exportGguf } from "../../src/gguf/export.js";
import { writeGguf } from "../../src/gguf/writer.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { readGguf, readGgufTensorBytes, type GgufFile } from "../../src/io/gguf.js";
import { openGgufModel } from "../../src/io/gguf-model.js";
import { canMap } from "../../src/io/mapped-file.js";
import { loadModel } from "../../src/model/load.js";
import { openTokenizer } from "../../src/tokenizer/auto.js";
import { fixture, repoRoot } from "../helpers/peers.js";

const dir = mkdtempSync(join(tmpdir(), "xverse-split-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const stories = fixture("golden", "stories260K");
const joined = join(dir, "stories-f16.gguf");
exportGguf(openCheckpoint(stories), loadConfig(stories), join(stories, "tokenizer.json"), joined, { type: "f16" });
const bytes = readFileSync(joined);
const whole = readGguf(joined);

const SUFFIX = (i: number) => String.fromCharCode(97 + Math.floor(i / 26)) + String.fromCharCode(97 + (i % 26));

/** Cuts `src` like `split -b size`: equal parts and a shorter last one, into dir/stem.aa, .ab, … */
function splitFile(sub: string, size: number, src: Uint8Array = bytes): { stem: string; parts: string[]; cuts: number[] } {
  const d = join(dir, sub);
  mkdirSync(d, { recursive: true });
  const stem = join(d, "model.gguf");
  const parts: string[] = [], cuts: number[] = [];
  for (let i = 0, off = 0; off < src.length; i++, off += size) {
    parts.push(`${stem}.${SUFFIX(i)}`);
    writeFileSync(parts[i], src.subarray(off, off + size));
    if (off > 0) cuts.push(off);
  }
  return { stem, parts, cuts };
}

function sameHeader(a: GgufFile, b: GgufFile): void {
  assert.deepEqual(a.metadata, b.metadata);
  assert.deepEqual(a.metadataTypes, b.metadataTypes);
  assert.deepEqual(a.tensors, b.tensors);
  assert.equal(a.dataOffset, b.dataOffset);
  assert.equal(a.fileSize, b.fileSize);
}

for (const size of [4099, 100_003]) {
  test(`byte-split into ${size}-byte parts: same header, tensor bytes and tensors as the joined file, mapped or read`, () => {
    const { stem, parts, cuts } = splitFile(`p${size}`, size);
    // the cuts are where the test needs them: inside the header (small parts) and strictly inside tensors
    const abs = whole.tensors.map((t) => [whole.dataOffset + t.offset, whole.dataOffset + t.offset + t.nbytes]);
    const inTensor = cuts.filter((c) => abs.some(([s, e]) => c > s && c < e));
    assert.ok(inTensor.length > 0, "a cut inside a tensor");
    if (size < whole.dataOffset) assert.ok(cuts[0] < whole.dataOffset, "a cut inside the header");
    else assert.ok(cuts.some((c) => c % 2 === 1), "an odd cut");

    for (const path of [parts[0], stem]) {
      const h = readGguf(path);
      sameHeader(h, whole);
      for (const t of h.tensors) assert.deepEqual(new Uint8Array(readGgufTensorBytes(h, t)), new Uint8Array(readGgufTensorBytes(whole, t)), t.name);
    }
    const ref = openGgufModel(joined, { mmap: false });
    for (const mmap of [true, false]) {
      const g = openGgufModel(parts[0], { mmap });
      assert.deepEqual(g.config, ref.config);
      const mapped = mmap && canMap();
      for (const n of ref.source.names()) {
        const a = g.source.read(n);
        assert.deepEqual(a, ref.source.read(n), `${n} (mmap ${mmap})`);
        // zero-copy unless the tensor straddles a cut, sits at an odd address in its part, or is re-ordered (q/k)
        const t = g.tensorFor(n)!.info, s = whole.dataOffset + t.offset, e = s + t.nbytes;
        const straddles = cuts.some((c) => c > s && c < e), aligned = (s % size) % (t.typeName === "F32" ? 4 : 2) === 0;
        const view = mapped && !straddles && aligned && !/\.(q|k)_proj\./.test(n);
        assert.equal(a.data.buffer.byteLength !== a.data.byteLength, view, `${n}: ${view ? "a view" : "a copy"}`);
      }
    }
  });
}

test("a byte-split model loads from its first part and from the stem, with the joined file's logits; so does its tokenizer", async () => {
  const { stem, parts } = splitFile("load", 65_537);
  const forward = async (path: string) => {
    const { model, tokenizer } = await loadModel(path, { onWarning: () => {} });
    return { logits: Array.from(model.forward(tokenizer.encode("Once upon a time").ids, model.newCache(16))), ids: tokenizer.encode("Lily and the dog").ids };
  };
  const want = await forward(joined);
  assert.deepEqual(await forward(parts[0]), want);
  assert.deepEqual(await forward(stem), want);
  assert.deepEqual(openTokenizer(stem).encode("a cat").ids, openTokenizer(joined).encode("a cat").ids);
});

test("xverse generate --model x.gguf.aa / x.gguf (parts only) prints what the joined file prints", () => {
  const { stem, parts } = splitFile("cli", 65_537);
  const bin = join(repoRoot, "bin", "xverse.js");
  const gen = (model: string) => spawnSync(process.execPath, [bin, "generate", "--model", model, "--greedy", "--max-new-tokens", "16", "--quiet", "Once upon a time"], { encoding: "utf8", timeout: 60_000 });
  const want = gen(joined);
  assert.equal(want.status, 0, want.stderr);
  assert.match(want.stdout, /Lily/);
  for (const m of [parts[0], stem]) {
    const r = gen(m);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, want.stdout, m);
  }
  // without the native addon (not built): the parts are read instead of mapped, on the TypeScript backend
  const noAddon = spawnSync(process.execPath, [bin, "generate", "--model", parts[0], "--backend", "ts", "--greedy", "--max-new-tokens", "16", "--quiet", "Once upon a time"],
    { encoding: "utf8", timeout: 60_000, env: { ...process.env, XVERSE_NATIVE_ADDON: join(dir, "no-such-addon.node") } });
  assert.equal(noAddon.status, 0, noAddon.stderr);
  assert.equal(noAddon.stdout, want.stdout);
  // a hostile twin through the binary: one line naming the missing part, no stack
  rmSync(parts[1]);
  const r = gen(parts[0]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /part .*model\.gguf\.ab is missing/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
});

test("gguf-split parts (-0000K-of-00003.gguf) still load, mapped, with the joined file's tensors", () => {
  const prefix = join(dir, "gs");
  const chunks = [whole.tensors.slice(0, 7), whole.tensors.slice(7, 20), whole.tensors.slice(20)];
  chunks.forEach((ts, i) => {
    const meta: Record<string, unknown> = i === 0 ? { ...whole.metadata } : { "general.architecture": "xverse" };
    Object.assign(meta, { "split.no": i, "split.count": 3, "split.tensors.count": whole.tensors.length });
    writeGguf(`${prefix}-0000${i + 1}-of-00003.gguf`, {
      metadata: meta, types: { ...(i === 0 ? whole.metadataTypes : {}), "split.no": "UINT16", "split.count": "UINT16", "split.tensors.count": "INT32" },
      tensors: ts.map((t) => ({ name: t.name, type: t.type, shape: t.shape, data: () => readGgufTensorBytes(whole, t) })),
    });
  });
  const ref = openGgufModel(joined, { mmap: false });
  const g = openGgufModel(`${prefix}-00002-of-00003.gguf`);
  for (const n of ref.source.names()) {
    const a = g.source.read(n);
    assert.deepEqual(a, ref.source.read(n), n);
    if (canMap() && !/\.(q|k)_proj\./.test(n)) assert.ok(a.data.buffer.byteLength > a.data.byteLength, `${n}: a view into its part`);
  }
});

/** Asserts that opening `path` (library and tokenizer) fails with an XverseError matching `re`. */
function refuses(path: string, re: RegExp): void {
  const check = (e: unknown) => e instanceof XverseError && re.test(e.message);
  assert.throws(() => openGgufModel(path), check, `openGgufModel(${path})`);
  assert.throws(() => readGguf(path), check, `readGguf(${path})`);
}

test("hostile twins: missing, truncated, oversized and directory parts; a later part; a stem without its first part", async () => {
  let s = splitFile("missing", 65_537);
  rmSync(s.parts[1]);
  refuses(s.parts[0], /byte-split file .*model\.gguf: part .*model\.gguf\.ab is missing \(found 1 part\(s\) before it and .*model\.gguf\.ac after\); download the missing part/);
  refuses(s.stem, /part .*model\.gguf\.ab is missing/);
  await assert.rejects(loadModel(s.stem, { onWarning: () => {} }), /part .*model\.gguf\.ab is missing/);

  s = splitFile("short-middle", 65_537);
  truncateSync(s.parts[1], 65_000);
  refuses(s.parts[0], /part .*model\.gguf\.ab is 65000 bytes but the other parts before the last are 65537 bytes — it is truncated \(interrupted download\?\); download it again/);

  s = splitFile("short-last", 65_537);
  const last = s.parts[s.parts.length - 1];
  truncateSync(last, 10);
  refuses(s.parts[0], new RegExp(`truncated.*\\(byte-split into ${s.parts.length} parts: is the last part, .*model\\.gguf\\.a[a-z], complete\\?\\)`));

  s = splitFile("long-last", 65_537);
  writeFileSync(s.parts[s.parts.length - 1], new Uint8Array(70_000));
  refuses(s.parts[0], /the last part .* \(70000 bytes\) is larger than the parts before it \(65537 bytes\) — an earlier part is truncated or the parts come from different splits/);

  s = splitFile("dir-part", 65_537);
  rmSync(s.parts[1]);
  mkdirSync(s.parts[1]);
  refuses(s.parts[0], /part .*model\.gguf\.ab is not a regular file \(a directory\?\)/);

  // a whole GGUF whose name merely ends in letters is no part: x.gguf.old loads as itself
  writeFileSync(join(dir, "model.gguf.old"), bytes);
  sameHeader(readGguf(join(dir, "model.gguf.old")), whole);

  s = splitFile("later", 65_537);
  refuses(s.parts[1], /model\.gguf\.ab is a later part of a byte-split file: give the first part, .*model\.gguf\.aa \(or .*model\.gguf for all of them\)/);
  rmSync(s.parts[0]);
  refuses(s.stem, /byte-split file .*model\.gguf: the first part .*model\.gguf\.aa is missing \(.*model\.gguf\.ab exists\)/);
  await assert.rejects(loadModel(s.stem, { onWarning: () => {} }), /the first part .*model\.gguf\.aa is missing/);
  assert.throws(() => openTokenizer(s.stem), /the first part .*model\.gguf\.aa is missing/);
});
