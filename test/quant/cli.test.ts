import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture, repoRoot } from "../helpers/peers.js";

const bin = join(repoRoot, "bin", "xverse.js");
const tiny = fixture("golden", "tiny-xverse");

function xverse(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
}

test("xverse quantize writes a quantized directory with a progress bar on stderr", () => {
  const work = mkdtempSync(join(tmpdir(), "xv-qcli-"));
  try {
    const out = join(work, "int4");
    const r = xverse("quantize", "--model", tiny, "--bits", "4", "--group-size", "16", "--out", out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /\[#+\] 30\/30/);
    assert.match(r.stderr, /quantized 21 projections \(int4, group 16\)/);
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    assert.equal(cfg.quantization_bit, 4);
    assert.equal(cfg.quantization_group_size, 16);
    assert.ok(existsSync(join(out, "model.safetensors")));
    assert.deepEqual(readdirSync(work), ["int4"]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test("xverse quantize: user errors are one line, exit 1, and leave nothing behind", () => {
  const work = mkdtempSync(join(tmpdir(), "xv-qcli-"));
  try {
    const cases: [string[], RegExp][] = [
      [["--model", tiny, "--out", join(work, "a")], /--bits must be 8 or 4 \(it is required\)/],
      [["--model", tiny, "--bits", "3", "--out", join(work, "a")], /--bits must be 8 or 4, got 3/],
      [["--bits", "8", "--out", join(work, "a")], /--model DIR is required/],
      [["--model", tiny, "--bits", "4", "--group-size", "32", "--out", join(work, "a")], /group size 32 does not divide/],
      [["--model", join(work, "nope"), "--bits", "8", "--out", join(work, "a")], /nope/],
    ];
    for (const [args, msg] of cases) {
      const r = xverse("quantize", ...args);
      assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    assert.deepEqual(readdirSync(work), []);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
