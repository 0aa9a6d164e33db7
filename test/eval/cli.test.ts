// The real binary on the embedded stories260K model: xverse eval and xverse perplexity.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { fixture, repoRoot } from "../helpers/peers.js";

const run = promisify(execFile);
const bin = join(repoRoot, "bin", "xverse.js");

test("xverse eval: table on stdout, JSON report, cache next to it; a rerun reads the cache", async () => {
  const dir = mkdtempSync(join(tmpdir(), "xverse-evalcli-"));
  try {
    const out = join(dir, "r.json");
    const args = [bin, "eval", "--data", fixture("eval"), "--tasks", "mmlu", "--limit", "1", "--shots", "1", "--out", out, "--quiet", "--backend", "ts"];
    const first = await run(process.execPath, args);
    assert.match(first.stdout, /^\| Model \| MMLU \(1-shot\) \|\n\|:--\|:--:\|\n\| stories260K \| \d+\.\d \|/);
    const report = JSON.parse(readFileSync(out, "utf8"));
    assert.equal(report.items.length, 3);
    assert.equal(report.items[0].scores.length, 4);
    assert.ok(existsSync(`${out}.cache.jsonl`));
    const second = await run(process.execPath, args);
    assert.equal(second.stdout, first.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("xverse eval: clear errors for a missing --data and for humaneval without --allow-code-execution", async () => {
  await assert.rejects(run(process.execPath, [bin, "eval", "--tasks", "mmlu"]), (e: { stderr: string; code: number }) => e.code === 1 && /--data DIR is required/.test(e.stderr));
  await assert.rejects(run(process.execPath, [bin, "eval", "--data", fixture("eval"), "--tasks", "humaneval"]), (e: { stderr: string }) => /--allow-code-execution/.test(e.stderr));
  await assert.rejects(run(process.execPath, [bin, "eval", "--data", fixture("eval"), "--tasks", "mmlu,bogus"]), (e: { stderr: string }) => /unknown task "bogus"/.test(e.stderr));
});

test("xverse perplexity: a finite perplexity over every token but the first, as JSON", async () => {
  const dir = mkdtempSync(join(tmpdir(), "xverse-ppl-"));
  try {
    const file = join(dir, "t.txt");
    writeFileSync(file, "Once upon a time, there was a little girl named Lily. She loved to play outside in the sun.\n");
    const { stdout } = await run(process.execPath, [bin, "perplexity", file, "--context", "16", "--stride", "8", "--json", "--quiet", "--backend", "ts"]);
    const r = JSON.parse(stdout);
    assert.ok(Number.isFinite(r.perplexity) && r.perplexity > 1, stdout);
    assert.equal(r.scored, r.tokens - 1);
    assert.equal(r.context, 16);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
