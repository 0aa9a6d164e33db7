/**
 * OpenAI's presence / frequency penalties and logit_bias against a reference written from the API reference's
 * formula (mu[j] - c[j]·frequency - [c[j] > 0]·presence + bias[j], c over generated tokens only), in f64: on a
 * real logits row of tiny-xverse, and end to end through the server (greedy, so the ids must match exactly).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { openaiAdjustments } from "../../src/generate/penalties.js";
import { loadModel } from "../../src/model/load.js";
import { post, startTestServer } from "../server/helpers.js";
import { fixture } from "../helpers/peers.js";

const DIR = fixture("golden", "tiny-xverse");
const { model, tokenizer: tok } = await loadModel(DIR, { backend: "ts", kvType: "f32" });
const V = model.config.vocabSize;

/** The API reference's formula, nothing shared with the implementation. */
function reference(logits: Float32Array, generated: readonly number[], p: number, f: number, bias: Record<number, number>): Float64Array {
  const out = Float64Array.from(logits);
  for (let j = 0; j < out.length; j++) {
    const c = generated.filter((g) => g === j).length;
    out[j] = out[j] - c * f - (c > 0 ? 1 : 0) * p + (bias[j] ?? 0);
  }
  return out;
}

function logitsAfter(ids: number[]): Float32Array {
  const seq = model.newCache(ids.length + 1);
  const out = new Float32Array(V);
  model.forward(ids, seq, { out });
  return out;
}

test("on a real logits row: equals the reference for several (presence, frequency, bias) settings", () => {
  const prompt = tok.encode("Once upon a time", { addSpecialTokens: true }).ids;
  const generated = [17, 17, 17, 42, 99, 42, prompt[1]];
  const row = logitsAfter([...prompt, ...generated]);
  const settings: [number, number, Record<number, number>][] = [
    [0.5, 0, {}], [0, 1.5, {}], [-2, 2, {}], [1, -0.7, { 17: -100, 5: 100, 42: 3.25 }], [0, 0, { 7: -1 }],
  ];
  for (const [p, f, bias] of settings) {
    const proc = openaiAdjustments({ presencePenalty: p, frequencyPenalty: f, logitBias: bias }, prompt.length)!;
    const got = proc([...prompt, ...generated], Float32Array.from(row));
    const want = reference(row, generated, p, f, bias);
    for (let j = 0; j < V; j++) assert.ok(Math.abs(got[j] - want[j]) <= 1e-5 * Math.max(1, Math.abs(want[j])), `p ${p} f ${f} id ${j}: ${got[j]} vs ${want[j]}`);
  }
  // the prompt's own tokens are not penalized
  const proc = openaiAdjustments({ presencePenalty: 2 }, prompt.length)!;
  const got = proc(prompt, Float32Array.from(row));
  assert.deepEqual([...got], [...row]);
  assert.equal(openaiAdjustments({ presencePenalty: 0, frequencyPenalty: 0, logitBias: { 3: 0 } }, 1), null);
});

test("server, greedy: /v1/completions with penalties and logit_bias returns the reference decoder's tokens", async () => {
  const srv = await startTestServer({ model: DIR, load: { backend: "ts", kvType: "f32" } });
  try {
    const prompt = tok.encode("Once upon a time", { addSpecialTokens: true }).ids;
    const cases: [number, number, Record<number, number>][] = [[0, 0, {}], [1.2, 0, {}], [0, 0.8, { 100: 2.5 }], [0.4, 1.1, { 33: -100 }]];
    for (const [p, f, bias] of cases) {
      // the reference: recompute from scratch each step, adjust with the formula, argmax (lowest id on ties)
      const ids = [...prompt];
      for (let step = 0; step < 16; step++) {
        const adj = reference(logitsAfter(ids), ids.slice(prompt.length), p, f, bias);
        let best = 0;
        for (let j = 1; j < V; j++) if (adj[j] > adj[best]) best = j;
        ids.push(best);
      }
      const want = tok.decode(ids, { skipSpecialTokens: true }).slice(tok.decode(prompt, { skipSpecialTokens: true }).length);
      const r = await post(srv, "/v1/completions", { prompt, max_tokens: 16, temperature: 0, presence_penalty: p, frequency_penalty: f, logit_bias: bias, ignore_eos: true });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.choices[0].text, want, `p ${p} f ${f} bias ${JSON.stringify(bias)}`);
    }
    // +100 forces a token at every step; out-of-range ids and biases are 400s naming logit_bias
    const forced = await post(srv, "/v1/completions", { prompt, max_tokens: 5, temperature: 0, logit_bias: { 100: 100 }, ignore_eos: true });
    assert.equal(forced.json.choices[0].text, tok.decode([...prompt, 100, 100, 100, 100, 100], { skipSpecialTokens: true }).slice(tok.decode(prompt, { skipSpecialTokens: true }).length));
    for (const bias of [{ [V]: 1 }, { 5: 101 }, { "-1": 3 }, { x: 1 }]) {
      const bad = await post(srv, "/v1/completions", { prompt, max_tokens: 2, logit_bias: bias });
      assert.equal(bad.status, 400, JSON.stringify(bias));
      assert.equal(bad.json.error.param, "logit_bias");
    }
    const pen = await post(srv, "/v1/completions", { prompt, max_tokens: 2, presence_penalty: 2.5 });
    assert.equal(pen.status, 400);
    assert.equal(pen.json.error.param, "presence_penalty");
  } finally {
    await srv.close();
  }
});
