/**
 * Truncated inputs at every byte offset (issue 17): a download cut short anywhere — in a header, a tensor table, a
 * pickle, a zip directory or the tensor data — is refused with an XverseError, never loaded as if whole and never
 * a RangeError / TypeError. Small fixtures are cut at every offset; the larger ones at every offset of their
 * header / directory and at 200 sampled offsets of their data (descending ftruncate of one copy keeps it fast).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, readJsonFile } from "../../src/config.js";
import { XverseError } from "../../src/errors.js";
import { exportGguf } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { parseGgufBytes, readGguf } from "../../src/io/gguf.js";
import { openSafetensors } from "../../src/io/safetensors.js";
import { openTorchBin } from "../../src/io/torch-bin.js";
import { tokenizerFromJson } from "../../src/tokenizer/load.js";
import { fixture, repoRoot } from "../helpers/peers.js";

const work = mkdtempSync(join(tmpdir(), "xv-trunc-"));
test.after(() => rmSync(work, { recursive: true, force: true }));

function rejects(what: string, fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (e instanceof XverseError) return;
    assert.fail(`${what}: ${(e as Error)?.stack ?? String(e)}`);
  }
  assert.fail(`${what}: a truncated file was accepted`);
}

/** Offsets to cut at: all below `dense`, then `n` spread over the rest (always the last byte too). */
function offsets(size: number, dense: number, n = 200): number[] {
  const out = new Set<number>();
  for (let k = 0; k < Math.min(size, dense); k++) out.add(k);
  for (let i = 0; i < n && size > dense; i++) out.add(dense + Math.floor(((size - dense) * i) / n));
  out.add(size - 1);
  return [...out].filter((k) => k >= 0 && k < size).sort((a, b) => b - a); // descending: ftruncate one copy
}

/** Cuts a copy of `file` at each offset (descending) and runs `open` on it. */
function eachCut(file: string, dense: number, open: (path: string) => unknown, n = 200): number {
  const copy = join(work, "cut-" + file.split("/").pop());
  copyFileSync(file, copy);
  const size = readFileSync(file).length;
  const cuts = offsets(size, dense, n);
  for (const k of cuts) {
    truncateSync(copy, k);
    rejects(`${file} cut at ${k} of ${size}`, () => open(copy));
  }
  return cuts.length;
}

test("GGUF: every offset of a small file (parse) and of a converted model (header dense, data sampled)", () => {
  // the writer pads the last tensor to the alignment: a cut in that padding loses nothing and must still load
  const needed = (f: ReturnType<typeof parseGgufBytes>) => f.dataOffset + Math.max(...f.tensors.map((t) => t.offset + t.nbytes));
  const small = new Uint8Array(readFileSync(join(repoRoot, "fuzz", "corpus", "gguf", "small")));
  const smallEnd = needed(parseGgufBytes(small, "small.gguf"));
  assert.ok(smallEnd < small.length && smallEnd > 800);
  for (let k = 0; k < small.length; k++) {
    if (k < smallEnd) rejects(`gguf cut at ${k}`, () => parseGgufBytes(small.subarray(0, k), "small.gguf"));
    else assert.equal(parseGgufBytes(small.subarray(0, k), "small.gguf").tensors.length, 3, `cut at ${k} (padding only)`);
  }
  const tiny = fixture("golden", "tiny-xverse");
  const gguf = join(work, "tiny.gguf");
  const src = openCheckpoint(tiny);
  try {
    exportGguf(src, parseConfig(readJsonFile(join(tiny, "config.json")), "config.json"), join(tiny, "tokenizer.json"), gguf, { type: "q8_0" });
  } finally {
    src.close();
  }
  const whole = readGguf(gguf);
  assert.ok(whole.tensors.length > 10);
  truncateSync(gguf, needed(whole)); // drop the final padding: every shorter cut then lacks real bytes
  const n = eachCut(gguf, 4096, (p) => readGguf(p));
  assert.ok(n > 4000);
});

test("safetensors: every offset of a small file, and the tiny model's header dense + 200 data offsets", () => {
  const n1 = eachCut(join(repoRoot, "fuzz", "corpus", "safetensors", "small"), 1 << 20, (p) => openSafetensors(p).close());
  const n2 = eachCut(join(fixture("golden", "tiny-xverse"), "model.safetensors"), 8192, (p) => openSafetensors(p).close());
  assert.ok(n1 > 300 && n2 > 8000);
});

test("torch .bin (zip + pickle): every offset of the small fixtures, the odd-dtype state dict's directory dense", () => {
  const io = fixture("io");
  const readAll = (p: string) => { const s = openTorchBin(p); try { for (const name of s.names()) s.read(name); } finally { s.close(); } };
  for (const f of ["evil_os_system.bin", "evil_numpy_global.bin"]) eachCut(join(io, f), 1 << 20, readAll);
  // a zip's directory is at its end: cut densely there, sampled through the stored tensors
  const odd = join(io, "odd_tensors.zip64.bin");
  const size = readFileSync(odd).length;
  const copy = join(work, "odd.bin");
  copyFileSync(odd, copy);
  const cuts = new Set<number>();
  for (let k = Math.max(0, size - 3000); k < size; k++) cuts.add(k);
  for (let i = 0; i < 300; i++) cuts.add(Math.floor((size * i) / 300));
  for (const k of [...cuts].sort((a, b) => b - a)) {
    truncateSync(copy, k);
    rejects(`odd_tensors cut at ${k} of ${size}`, () => readAll(copy));
  }
});

test("tokenizer.json and config.json: every offset is refused (truncated JSON names the file)", () => {
  const text = readFileSync(join(repoRoot, "models", "stories260K", "tokenizer.json"), "utf8");
  const end = text.trimEnd().length;
  for (let k = 0; k < end; k++) rejects(`tokenizer.json cut at ${k}`, () => tokenizerFromJson(text.slice(0, k)));
  const cfgPath = join(fixture("golden", "tiny-xverse"), "config.json");
  const cfg = readFileSync(cfgPath, "utf8");
  const p = join(work, "config.json");
  for (let k = 0; k < cfg.trimEnd().length; k++) {
    writeFileSync(p, cfg.slice(0, k));
    rejects(`config.json cut at ${k}`, () => parseConfig(readJsonFile(p), p));
  }
});
