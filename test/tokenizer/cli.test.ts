/** `xverse tokenize` / `xverse detokenize` run as real processes on the embedded model and the golden tokenizer. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { fixture, repoRoot } from "../helpers/peers.js";

function xverse(args: string[], input: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, "bin", "xverse.js"), ...args], { input, encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("tokenize on the embedded model adds BOS; detokenize inverts it", () => {
  const r = xverse(["tokenize"], "Once upon a time");
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(JSON.parse(r.out), [1, 403, 407, 261, 378]);
  const d = xverse(["detokenize", "--skip-special"], r.out);
  assert.equal(d.code, 0, d.err);
  assert.equal(d.out, "Once upon a time");
});

test("--jsonl: one JSON string per line in, one array per line out, and back", () => {
  const model = fixture("golden", "tokenizer-xverse-style", "tokenizer.json");
  const lines = ["Hello world", "你好，世界", "<|endoftext|>x", ""];
  const r = xverse(["tokenize", "--model", model, "--jsonl"], lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  assert.equal(r.code, 0, r.err);
  const arrays = r.out.trim().split("\n").map((l) => JSON.parse(l) as number[]);
  assert.equal(arrays.length, 4);
  assert.deepEqual(arrays[0], [451, 818, 1589, 315, 272, 794]);
  const d = xverse(["detokenize", "--model", model, "--jsonl"], r.out);
  assert.equal(d.code, 0, d.err);
  // The text after a special token gets its own ▁ prefix, which decodes as a space (as in the Rust library).
  assert.deepEqual(d.out.trim().split("\n").map((l) => JSON.parse(l)), ["Hello world", "你好，世界", "<|endoftext|> x", ""]);
});

test("clear errors: bad JSON, bad ids, missing model", () => {
  let r = xverse(["tokenize", "--jsonl"], "not json\n");
  assert.equal(r.code, 1);
  assert.match(r.err, /line 1 is not valid JSON/);
  r = xverse(["detokenize"], "[1, 99999]");
  assert.equal(r.code, 1);
  assert.match(r.err, /outside the vocabulary/);
  r = xverse(["tokenize", "--model", "/no/such/dir"], "x");
  assert.equal(r.code, 1);
  assert.match(r.err, /does not exist/);
  r = xverse(["tokenize", "--help"], "");
  assert.equal(r.code, 0);
  assert.match(r.out, /--jsonl/);
});
