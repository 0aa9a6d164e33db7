/**
 * Issue 17 (soak RSS drift): the model thread's memory must not grow with the number of distinct prompts it has
 * tokenized. The soak's +20.7 % drift was the BPE word cache (src/tokenizer/bpe.ts): stories260K has no
 * pre-tokenizer, so a "word" is a whole message, every distinct one ≤ 256 characters was kept (about 0.6 per
 * soak request), each as its own Int32Array + ArrayBuffer (~550 B retained, heap + backing store), up to 100,000
 * of them (~55 MiB) before the cache was dropped. Measured here the way the heap snapshots showed it: retained
 * JS heap + external bytes after a full GC, per distinct prompt.
 * bpe.ts now keeps at most 10,000 words, as Hugging Face's Rust BPE does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { repoRoot } from "../helpers/peers.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function retained(): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

test("tokenizing 30,000 distinct prompts retains at most 8 MiB", async () => {
  const tok = await loadTokenizer(join(repoRoot, "models", "stories260K"));
  for (let i = 0; i < 100; i++) tok.encode(`Warm up ${i % 10}`);
  const before = retained();
  // the soak's prompts: each request names its own number
  for (let i = 0; i < 30_000; i++) tok.encode(`Tell me about the number ${i}.`, { addSpecialTokens: false });
  const grown = retained() - before;
  assert.ok(grown < 8 * 2 ** 20, `retained ${(grown / 2 ** 20).toFixed(1)} MiB after 30,000 distinct prompts (${(grown / 30_000).toFixed(0)} B each)`);
});
