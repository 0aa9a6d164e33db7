// Sliding-window perplexity against an independent computation: one full-context forward with the test's own
// log-softmax, and a window-by-window re-implementation of Hugging Face's strided loop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { openSafetensors } from "../../src/io/safetensors.js";
import { XverseModel } from "../../src/model/xverse.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { perplexity } from "../../src/eval/perplexity.js";
import { fixture } from "../helpers/peers.js";

const dir = fixture("golden", "tiny-xverse");
const model = XverseModel.fromSource(loadConfig(dir), openSafetensors(join(dir, "model.safetensors")), { kvType: "f32", backend: tsBackend });
const ids = loadTokenizer(dir).encode("Once upon a time, a little fox lived in the forest. 从前有一只小狐狸住在森林里。It liked to run and play every day.").ids;

/** NLL of ids[from..to) given ids[start..t) for each t, from one fresh forward (the test's own math). */
function windowNll(start: number, from: number, to: number): number {
  const V = model.config.vocabSize;
  const cache = model.newCache(to - start);
  const logits = model.forward(ids.slice(start, to - 1), cache, { logits: "all" });
  let nll = 0;
  for (let t = from; t < to; t++) {
    const row = Array.from(logits.subarray((t - 1 - start) * V, (t - start) * V));
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
    nll += lse - row[ids[t]!]!;
  }
  return nll;
}

test("one window over the whole text = exp(mean NLL) of a full-context forward", async () => {
  assert.ok(ids.length > 40, `text is ${ids.length} tokens`);
  const r = await perplexity(model, ids, { context: 256 });
  const ref = Math.exp(windowNll(0, 1, ids.length) / (ids.length - 1));
  assert.equal(r.scored, ids.length - 1);
  assert.equal(r.windows, 1);
  assert.ok(Math.abs(r.perplexity - ref) / ref < 1e-6, `${r.perplexity} vs ${ref}`);
});

test("strided windows score each token at most once, with the context the HF loop gives it", async () => {
  for (const [context, stride] of [[16, 16], [16, 8], [20, 7]] as const) {
    const r = await perplexity(model, ids, { context, stride });
    let nll = 0, scored = 0, prevEnd = 0, windows = 0;
    for (let begin = 0; begin < ids.length; begin += stride) {
      const end = Math.min(begin + context, ids.length);
      const from = Math.max(prevEnd, begin + 1);
      nll += windowNll(begin, from, end);
      scored += end - from;
      prevEnd = end;
      windows++;
      if (end === ids.length) break;
    }
    assert.equal(r.scored, scored, `context ${context} stride ${stride}`);
    // Overlapping windows score every token but the first; disjoint ones skip each window's first token (as HF).
    assert.equal(scored, stride < context ? ids.length - 1 : ids.length - windows);
    assert.equal(r.windows, windows);
    const ref = Math.exp(nll / scored);
    assert.ok(Math.abs(r.perplexity - ref) / ref < 1e-6, `context ${context} stride ${stride}: ${r.perplexity} vs ${ref}`);
  }
});
