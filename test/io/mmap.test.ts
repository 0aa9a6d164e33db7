/**
 * Mapped file access (src/io/mapped-file.ts over native/src/mmap.cc): mapped bytes equal the file's bytes for
 * every range (windows, their overlaps and the copies across them), views are views (no copy) and stay valid,
 * the reading fallback gives the same bytes, the bindings reject bad arguments, and a ~290 MB f16 GGUF loads
 * mapped within file size + 150 MB of RSS with the same logits as a read load.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { alignedView, canMap, openBytes } from "../../src/io/mapped-file.js";
import { openSafetensors, writeSafetensors } from "../../src/io/safetensors.js";
import { openGgufModel } from "../../src/io/gguf-model.js";
import { readGguf } from "../../src/io/gguf.js";
import { exportGguf } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadConfig } from "../../src/config.js";
import { loadAddon } from "../../src/backend/native/addon.js";
import { tryLoadNativeBackend } from "../../src/backend/native/index.js";
import { loadModel } from "../../src/model/load.js";
import { XverseError } from "../../src/errors.js";
import { fixture } from "../helpers/peers.js";
import { rng } from "../helpers/rng.js";
import { writeSyntheticGguf } from "../helpers/synthetic-gguf.js";

const dir = mkdtempSync(join(tmpdir(), "xverse-mmap-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const mapping = canMap();
const PAGE = 65536; // a multiple of every page size (4 KiB x86, 16/64 KiB arm64)

function randomFile(name: string, n: number, seed: number): { path: string; bytes: Uint8Array } {
  const r = rng(seed);
  const bytes = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, bytes };
}

test("mapped windows: every range equals the file's bytes; ranges inside a window are views of one mapping", () => {
  // stride 64 KiB: windows of 192 KiB every 64 KiB, so the 450 KB file has 7 windows; ranges up to 128 KiB
  // lie in one, longer ones may straddle two and are copied
  const { path, bytes } = randomFile("windows.bin", 450_001, 1);
  const mapped = openBytes(path, { windowStride: PAGE });
  const read = openBytes(path, { mmap: false });
  assert.equal(mapped.mapped, mapping);
  assert.equal(read.mapped, false);
  assert.equal(mapped.size, bytes.length);
  const r = rng(2);
  const cases: Array<[number, number]> = [[0, 0], [0, 1], [bytes.length - 1, 1], [PAGE - 3, 6], [3 * PAGE - 5, 10], [0, bytes.length], [PAGE + 7, 2 * PAGE], [PAGE + 7, 2 * PAGE + 1]];
  for (let i = 0; i < 200; i++) {
    const len = Math.floor(r() * r() * 3.2 * PAGE);
    cases.push([Math.floor(r() * (bytes.length - len)), len]);
  }
  for (const [pos, len] of cases) {
    const want = bytes.subarray(pos, pos + len);
    assert.deepEqual(new Uint8Array(mapped.bytes(pos, len, "range")), want, `bytes(${pos}, ${len})`);
    assert.deepEqual(new Uint8Array(read.bytes(pos, len, "range")), want, `read bytes(${pos}, ${len})`);
    const dst = new Uint8Array(len + 3);
    assert.equal(mapped.readAt(dst, 3, len, pos), len);
    assert.deepEqual(dst.subarray(3), want, `readAt(${pos}, ${len})`);
    const inWindow = pos + len <= Math.floor(pos / PAGE) * PAGE + 3 * PAGE;
    const b = mapped.bytes(pos, len, "range");
    // a view's buffer is its window (192 KiB, or less at the end), a copy's is its own length
    if (mapping && inWindow && len > 0) assert.ok(b.buffer.byteLength > len || len === 3 * PAGE, `bytes(${pos}, ${len}) should be a view`);
    if (!mapping || !inWindow) assert.equal(b.buffer.byteLength, len, `bytes(${pos}, ${len}) should be a copy`);
  }
  // two ranges in the same window share one mapping (one mmap per window, made once)
  if (mapping) {
    assert.ok(mapped.bytes(10, 5, "a").buffer === mapped.bytes(PAGE - 10, 5, "b").buffer, "window 0, twice");
    assert.ok(mapped.bytes(10, 5, "a").buffer !== mapped.bytes(PAGE + 10, 5, "b").buffer, "windows 0 and 1");
  }
  // readAt clamps at the end of the file; bytes() refuses ranges outside it
  assert.equal(mapped.readAt(new Uint8Array(10), 0, 10, bytes.length - 4), 4);
  assert.throws(() => mapped.bytes(bytes.length - 4, 5, 'tensor "x"'), (e: unknown) => e instanceof XverseError && /tensor "x" \(bytes 449997…450002\) lies outside the 450001-byte file/.test(e.message));
  mapped.populate(0, bytes.length);
  mapped.populate(PAGE - 1, 2);
});

test("a 5 GiB file (sparse) maps as 3 GiB windows: bytes past 4 GiB and across window edges are the file's", { skip: !mapping }, () => {
  const path = join(dir, "sparse.bin");
  writeFileSync(path, new Uint8Array(0));
  truncateSync(path, 5 * 2 ** 30); // no disk blocks: holes read as zeros
  const marks = [2 ** 30 - 3, 3 * 2 ** 30 - 2, 4 * 2 ** 30 + 5, 5 * 2 ** 30 - 8];
  const fd = openSync(path, "r+");
  marks.forEach((m, i) => writeSync(fd, Uint8Array.from({ length: 8 }, (_, j) => 16 * i + j + 1), 0, 8, m));
  closeSync(fd);
  const src = openBytes(path);
  assert.equal(src.size, 5 * 2 ** 30);
  marks.forEach((m, i) => {
    const want = Uint8Array.from({ length: 8 }, (_, j) => 16 * i + j + 1);
    const b = src.bytes(m, 8, `mark ${i}`);
    assert.deepEqual(new Uint8Array(b), want, `mark ${i} at ${m}`);
    // window floor(m / 1 GiB): 3 GiB long, or shorter at the end of the file
    assert.equal(b.buffer.byteLength, Math.min(3 * 2 ** 30, 5 * 2 ** 30 - Math.floor(m / 2 ** 30) * 2 ** 30));
  });
  // 16 bytes across the 1 GiB edge lie whole in window 0; readAt past 4 GiB reads from window 4
  assert.deepEqual(Array.from(src.bytes(2 ** 30 - 8, 16, "edge")), [0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0]);
  const dst = new Uint8Array(12);
  assert.equal(src.readAt(dst, 0, 12, 4 * 2 ** 30 + 1), 12);
  assert.deepEqual(Array.from(dst), [0, 0, 0, 0, 33, 34, 35, 36, 37, 38, 39, 40]);
});

test("alignedView: a view when the address allows it, else a copy with the same values", () => {
  const f = new Float32Array([1.5, -2, 3.25, 1e-3, 7]);
  const raw = new Uint8Array(f.byteLength + 1);
  raw.set(new Uint8Array(f.buffer), 1);
  const mis = alignedView(raw.subarray(1), "f32");
  assert.deepEqual(Array.from(mis), Array.from(f));
  assert.notEqual(mis.buffer, raw.buffer);
  const al = alignedView(new Uint8Array(f.buffer, 4, 8), "f32");
  assert.equal(al.buffer, f.buffer);
  assert.deepEqual(Array.from(al), [-2, 3.25]);
  const h = alignedView(raw.subarray(1, 7), "u16");
  assert.deepEqual(Array.from(h), Array.from(new Uint16Array(f.buffer, 0, 3)));
  assert.throws(() => alignedView(raw.subarray(0, 3), "u16"), /3 bytes is not a whole number of 2-byte elements/);
});

test("mapFile / populate / release bindings check their arguments before touching memory", (t) => {
  const { addon } = loadAddon();
  if (!addon?.mapFile || process.platform === "win32") return t.skip("native addon with mapFile not built");
  const { path, bytes } = randomFile("bind.bin", 3 * PAGE + 11, 3);
  const ab = addon.mapFile(path, PAGE, 2 * PAGE + 11)!;
  assert.deepEqual(new Uint8Array(ab), bytes.subarray(PAGE));
  assert.equal(addon.mapFile(path, 0, 0)!.byteLength, 0);
  assert.throws(() => addon.mapFile!(path, 1, 10), /not a multiple of the page size/);
  assert.throws(() => addon.mapFile!(path, 0, bytes.length + 1), /shorter than the range asked for/);
  assert.throws(() => addon.mapFile!(path, -1, 10), /whole numbers/);
  assert.throws(() => addon.mapFile!(path, 0.5, 10), /whole numbers/);
  assert.throws(() => (addon.mapFile as unknown as (p: unknown) => void)(42), /mapFile\(path: string/);
  assert.throws(() => addon.mapFile!(join(dir, "nope"), 0, 1), /cannot open .*nope: No such file/);
  assert.throws(() => addon.mapFile!(dir, 0, 1), /is not a regular file/);
  assert.throws(() => addon.populate!(ab, 5, ab.byteLength), /inside the buffer/);
  assert.throws(() => (addon.populate as unknown as (b: unknown) => void)(new Uint8Array(4)), /populate\(buffer: ArrayBuffer/);
  addon.populate!(ab, 0, ab.byteLength);
  addon.populate!(new ArrayBuffer(100), 3, 50); // a heap buffer: harmless
  // release drops pages of a mapping only (on a heap buffer MADV_DONTNEED would zero it); they read back unchanged
  assert.throws(() => addon.release!(new ArrayBuffer(3 * PAGE), 0, 3 * PAGE), /not one mapFile returned/);
  assert.throws(() => addon.release!(ab, 1, ab.byteLength), /inside the buffer/);
  assert.equal(addon.release!(ab, 0, ab.byteLength), true);
  assert.equal(addon.release!(ab, 1, 10), false, "no whole page inside: nothing to drop");
  assert.deepEqual(new Uint8Array(ab), bytes.subarray(PAGE));
});

test("a mapping is unmapped once its buffer and every view are collected", { skip: process.platform !== "linux" || !mapping }, () => {
  const { path } = randomFile("gc.bin", 5 * PAGE, 4);
  const addonPath = loadAddon();
  if (!addonPath.addon) return;
  const child = `
    const a = require(${JSON.stringify(addonPath.path)});
    const fs = require("fs");
    const maps = () => fs.readFileSync("/proc/self/maps", "utf8").split("\\n").filter((l) => l.includes(${JSON.stringify(path)})).length;
    let view = (() => new Uint8Array(a.mapFile(${JSON.stringify(path)}, 0, ${5 * PAGE}), 100, 10))();
    const before = maps();
    for (let i = 0; i < 3; i++) globalThis.gc();
    const held = maps();
    view = null;
    setTimeout(() => { for (let i = 0; i < 3; i++) globalThis.gc(); setTimeout(() => console.log(JSON.stringify({ before, held, after: maps() })), 50); }, 10);`;
  const r = spawnSync(process.execPath, ["--expose-gc", "-e", child], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const { before, held, after } = JSON.parse(r.stdout) as { before: number; held: number; after: number };
  assert.ok(before >= 1 && held === before, `mapped while a view lives: ${before}, ${held}`);
  assert.equal(after, 0, "unmapped after collection");
});

test("safetensors opened mapped: f32/f16/bf16 tensors are views with the same values; other dtypes are copies", () => {
  const path = join(dir, "st.safetensors");
  const r = rng(5);
  const f32 = Float32Array.from({ length: 96 }, () => r() - 0.5);
  const f16 = Uint16Array.from({ length: 40 }, () => Math.floor(r() * 0x7bff));
  const bf16 = Uint16Array.from({ length: 64 }, () => Math.floor(r() * 0x7f7f));
  const i64 = BigInt64Array.from({ length: 3 }, (_, i) => BigInt(i * 1e12));
  writeSafetensors(path, [
    { name: "a", tensor: { dtype: "f32", shape: [8, 12], data: f32 } },
    { name: "b", tensor: { dtype: "f16", shape: [5, 8], data: f16 } },
    { name: "c", tensor: { dtype: "i64", shape: [3], data: i64 } },
    { name: "d", tensor: { dtype: "bf16", shape: [64], data: bf16 } },
  ]);
  const m = openSafetensors(path, { mmap: true });
  const plain = openSafetensors(path);
  for (const n of ["a", "b", "c", "d"]) assert.deepEqual(m.read(n), plain.read(n), n);
  const size = statSync(path).size;
  for (const n of ["a", "b", "d"]) assert.equal(m.read(n).data.buffer.byteLength, mapping ? size : m.read(n).data.byteLength, `${n}: view into the mapping`);
  assert.equal(m.read("c").data.buffer.byteLength, 24);
  assert.equal(plain.read("a").data.buffer.byteLength, 96 * 4, "without { mmap: true } a read is a copy");
  m.close();
  plain.close();
});

test("GGUF opened mapped: F16/F32 tensors are views of the file, q/k rows un-permuted into copies, values as read", () => {
  const tiny = fixture("golden", "tiny-xverse");
  const path = join(dir, "tiny-f16.gguf");
  exportGguf(openCheckpoint(tiny), loadConfig(tiny), join(tiny, "tokenizer.json"), path, { type: "f16" });
  const mapped = openGgufModel(path);
  const read = openGgufModel(path, { mmap: false });
  const size = statSync(path).size;
  let views = 0;
  for (const n of mapped.source.names()) {
    const a = mapped.source.read(n), b = read.source.read(n);
    assert.deepEqual(a, b, n);
    const isQk = /\.(q|k)_proj\./.test(n);
    if (mapping && !isQk) {
      assert.equal(a.data.buffer.byteLength, size, `${n} is a view`);
      views++;
    } else assert.equal(a.data.buffer.byteLength, a.data.byteLength, `${n} is a copy`);
    assert.equal(b.data.buffer.byteLength, b.data.byteLength, `${n} read: its own buffer`);
  }
  if (mapping) assert.equal(views, 3 * 7 + 3);
  // the whole tensor data: progress reaches the sum of tensor bytes exactly once per tensor handed out
  const seen: Array<[number, number]> = [];
  const g = openGgufModel(path, { onProgress: (d, t) => seen.push([d, t]) });
  const total = readGguf(path).tensors.reduce((s, t) => s + t.nbytes, 0);
  for (const n of g.source.names().filter((x) => x !== "lm_head.weight")) g.source.read(n);
  g.source.read("lm_head.weight");
  assert.equal(seen.length, g.source.names().length);
  assert.ok(seen.every(([, t]) => t === total));
  assert.deepEqual(seen[seen.length - 1], [total, total]);
});

test("a ~290 MB f16 GGUF loads mapped within file size + 150 MB of RSS, with the logits of a read load", { timeout: 180_000 }, () => {
  const path = join(dir, "big.gguf");
  const tinyGguf = join(dir, "tiny-f16.gguf");
  if (!existsSync(tinyGguf)) {
    const tiny = fixture("golden", "tiny-xverse");
    exportGguf(openCheckpoint(tiny), loadConfig(tiny), join(tiny, "tokenizer.json"), tinyGguf, { type: "f16" });
  }
  writeSyntheticGguf(path, { hidden: 1024, heads: 16, kvHeads: 4, intermediate: 2816, layers: 12 }, readGguf(tinyGguf));
  const size = statSync(path).size;
  readFileSync(path); // warm the page cache: both loads read from memory
  const child = join(dirname(fileURLToPath(import.meta.url)), "mmap-load-child.js");
  const run = (mode: string) => {
    const r = spawnSync(process.execPath, [child, path, mode, "auto"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { loadMs: number; forwardMs: number; rss: number; rssAnon: number | null; rssFile: number | null; logits: number[] };
  };
  const mm = run("mmap"), rd = run("read");
  const mb = (n: number | null) => (n === null ? "?" : (n / 2 ** 20).toFixed(0));
  process.stderr.write(`# ${mb(size)} MiB f16 GGUF, warm cache: mmap load ${mm.loadMs.toFixed(0)} ms, rss ${mb(mm.rss)} MiB (anon ${mb(mm.rssAnon)}, file ${mb(mm.rssFile)}); ` +
    `read load ${rd.loadMs.toFixed(0)} ms, rss ${mb(rd.rss)} MiB (anon ${mb(rd.rssAnon)})\n`);
  assert.deepEqual(mm.logits, rd.logits);
  assert.ok(mm.rss <= size + 150 * 2 ** 20, `mapped load RSS ${mm.rss} > file ${size} + 150 MiB`);
  if (mapping && mm.rssAnon !== null && rd.rssAnon !== null) {
    // the weights are the file's pages, not the heap's: only the q/k copies (~30 MB; their file pages are
    // released) and the runtime are anonymous
    assert.ok(mm.rssAnon < 120 * 2 ** 20, `mapped load: ${mb(mm.rssAnon)} MiB anonymous`);
    assert.ok(rd.rssAnon > size * 0.9, `read load: ${mb(rd.rssAnon)} MiB anonymous (the test would not tell the two apart)`);
  }
});

// (the child's "auto" backend: the native one here when it loads)
const repacksQ4_0 = tryLoadNativeBackend({ threads: 1 }).backend?.repacksQ4_0 ?? false;

test(`a Q4_0 GGUF mapped (${repacksQ4_0 ? "repacked while loading: the file's pages are released" : "blocks as stored: the weights are the file's pages"}): RSS is not the file twice`, { timeout: 120_000 }, () => {
  const path = join(dir, "q4.gguf");
  const tinyGguf = join(dir, "tiny-f16.gguf");
  if (!existsSync(tinyGguf)) {
    const tiny = fixture("golden", "tiny-xverse");
    exportGguf(openCheckpoint(tiny), loadConfig(tiny), join(tiny, "tokenizer.json"), tinyGguf, { type: "f16" });
  }
  writeSyntheticGguf(path, { hidden: 1024, heads: 16, kvHeads: 4, intermediate: 2816, layers: 6 }, readGguf(tinyGguf), 2, "q4_0");
  const size = statSync(path).size;
  readFileSync(path);
  const child = join(dirname(fileURLToPath(import.meta.url)), "mmap-load-child.js");
  const run = (mode: string) => {
    const r = spawnSync(process.execPath, [child, path, mode, "auto"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { rss: number; rssAnon: number | null; rssFile: number | null; logits: number[] };
  };
  const mm = run("mmap"), rd = run("read");
  assert.deepEqual(mm.logits, rd.logits);
  if (repacksQ4_0) {
    // every Q4_0 matrix is repacked (a copy), so almost none of the file stays mapped
    if (mapping && mm.rssFile !== null && rd.rssFile !== null) {
      assert.ok(mm.rssFile - rd.rssFile < 0.25 * size, `mapped: ${mm.rssFile - rd.rssFile} bytes of the ${size}-byte file still resident`);
    }
  } else if (mapping && mm.rssAnon !== null && rd.rssAnon !== null) {
    // the blocks run as stored: they are the mapped file's pages, not anonymous copies as in the read load
    assert.ok(rd.rssAnon - mm.rssAnon > 0.75 * size, `anonymous: mapped ${mm.rssAnon} vs read ${rd.rssAnon} of a ${size}-byte file`);
  }
  assert.ok(mm.rss < rd.rss + 0.25 * size, `mapped RSS ${mm.rss} vs read ${rd.rss}`);
});

test("loadModel maps a safetensors directory (weights are views of model.safetensors) unless quantizing or told not to", async () => {
  const stories = fixture("golden", "stories260K");
  const size = statSync(join(stories, "model.safetensors")).size;
  const load = async (opts: Parameters<typeof loadModel>[1]) => (await loadModel(stories, { backend: "ts", onWarning: () => {}, ...opts })).model.weights;
  const isView = (w: { data: ArrayBufferView }) => w.data.buffer.byteLength === size;
  const mapped = await load({});
  assert.equal(isView(mapped.layers[0].down), mapping);
  assert.equal(isView(mapped.embed), mapping);
  assert.equal(isView((await load({ mmap: false })).embed), false);
  // quantizing copies every projection: the file is read, not mapped (its pages would stay resident beside the copies)
  assert.equal(isView((await load({ quantize: 8 })).embed), false);
});
