// Log-likelihood against golden_loglik.jsonl (PyTorch, lm-eval semantics) on tiny-xverse, through the same
// functions the harness scores multiple choice with.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { openSafetensors } from "../../src/io/safetensors.js";
import { XverseModel } from "../../src/model/xverse.js";
import { encodePair, loglikelihood, loglikelihoodTokens, PrefixCache } from "../../src/eval/loglik.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { fixture } from "../helpers/peers.js";

const dir = fixture("golden", "tiny-xverse");
const cases = readFileSync(join(dir, "golden_loglik.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as {
  context: string; continuation: string; input_ids: number[]; n_context: number; loglik: number; is_greedy: boolean;
});

function tinyModel(): XverseModel {
  return XverseModel.fromSource(loadConfig(dir), openSafetensors(join(dir, "model.safetensors")), { kvType: "f32", backend: tsBackend });
}

test("golden log-likelihoods within 1e-4 from token ids (fresh cache and a reused one)", () => {
  const model = tinyModel();
  const shared = new PrefixCache();
  for (const c of cases) {
    const ctx = c.input_ids.slice(0, c.n_context), cont = c.input_ids.slice(c.n_context);
    for (const reuse of [new PrefixCache(), shared]) {
      const r = loglikelihoodTokens(model, ctx, cont, reuse);
      assert.ok(Math.abs(r.logprob - c.loglik) <= 1e-4, `${JSON.stringify(c.context)}: ${r.logprob} vs ${c.loglik}`);
      assert.equal(r.isGreedy, c.is_greedy);
    }
  }
});

test("reusing the cache across choices that share a context gives the fresh-cache scores", () => {
  const model = tinyModel();
  const c = cases[0]!;
  const ctx = c.input_ids.slice(0, c.n_context);
  const reuse = new PrefixCache();
  for (const choice of [[1581], [1748], [16, 1622], c.input_ids.slice(c.n_context)]) {
    const a = loglikelihoodTokens(model, ctx, choice, reuse);
    const b = loglikelihoodTokens(model, ctx, choice);
    assert.ok(Math.abs(a.logprob - b.logprob) <= 1e-5, `${a.logprob} vs ${b.logprob}`);
    assert.equal(a.isGreedy, b.isGreedy);
  }
});

test("golden log-likelihoods within 1e-4 from strings (lm-eval encoding conventions)", () => {
  const tok = loadTokenizer(dir);
  const model = tinyModel();
  const reuse = new PrefixCache();
  for (const c of cases) {
    const { contextIds, continuationIds } = encodePair(tok, c.context, c.continuation);
    assert.deepEqual([...contextIds, ...continuationIds], c.input_ids, c.context);
    assert.equal(contextIds.length, c.n_context);
    const r = loglikelihood(model, tok, c.context, c.continuation, reuse);
    assert.ok(Math.abs(r.logprob - c.loglik) <= 1e-4, `${JSON.stringify(c.context)}: ${r.logprob} vs ${c.loglik}`);
    assert.equal(r.isGreedy, c.is_greedy);
  }
});

test("isGreedy is true exactly when every continuation token is the argmax", () => {
  const model = tinyModel();
  const ctx = cases[1]!.input_ids.slice(0, cases[1]!.n_context);
  const V = model.config.vocabSize;
  const greedy: number[] = [];
  const ids = [...ctx];
  for (let k = 0; k < 3; k++) {
    const logits = model.forward(ids, model.newCache(ids.length), { logits: "last" });
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i]! > logits[best]!) best = i;
    greedy.push(best);
    ids.push(best);
  }
  assert.equal(loglikelihoodTokens(model, ctx, greedy).isGreedy, true);
  assert.equal(loglikelihoodTokens(model, ctx, [greedy[0]!, (greedy[1]! + 1) % V, greedy[2]!]).isGreedy, false);
});

test("a context longer than max_position_embeddings is cut from the left (lm-eval), as if given cut", () => {
  const model = tinyModel();
  const maxPos = model.config.maxPositionEmbeddings; // 256
  const long = Array.from({ length: maxPos + 40 }, (_, i) => 300 + ((i * 37) % 900));
  const cont = [1581, 1748];
  const full = [...long, ...cont];
  const kept = full.slice(full.length - 1 - maxPos); // the model reads maxPos tokens and predicts the last
  const a = loglikelihoodTokens(model, long, cont);
  const b = loglikelihoodTokens(model, kept.slice(0, kept.length - cont.length), cont);
  assert.ok(Math.abs(a.logprob - b.logprob) < 1e-6, `${a.logprob} vs ${b.logprob}`);
});
