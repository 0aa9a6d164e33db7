/**
 * n > 1 through the official openai client: n choices, each the reply a single request with seed + i gives —
 * so choices run batched (n rows in one forward pass, the prompt's KV blocks computed once) decode exactly as a
 * request alone (seed determinism across batch sizes); streamed choices carry their index; usage counts the
 * prompt once and every choice's tokens.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type OpenAI from "openai";
import type { RunningServer } from "../../src/server/http.js";
import { openai, post, startTestServer } from "./helpers.js";

describe("n choices (stories260K)", () => {
  let srv: RunningServer;
  let client: OpenAI;
  before(async () => {
    srv = await startTestServer({ load: { backend: "auto", kvType: "f32" }, concurrency: 4 });
    client = openai(srv);
  });
  after(() => srv.close());

  const messages = [{ role: "user" as const, content: "Tell me about a dog." }];

  it("n = 3: three choices, each equal to a lone request with seed + index; usage sums them", async () => {
    const r = await client.chat.completions.create({ model: "m", messages, n: 3, seed: 40, temperature: 1, max_tokens: 24 });
    assert.equal(r.choices.length, 3);
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
    // one at a time: each runs in a batch of one
    const alone: OpenAI.ChatCompletion[] = [];
    for (const seed of [40, 41, 42]) alone.push(await client.chat.completions.create({ model: "m", messages, seed, temperature: 1, max_tokens: 24 }));
    r.choices.forEach((c, i) => assert.equal(c.message.content, alone[i].choices[0].message.content, `choice ${i}`));
    assert.ok(new Set(r.choices.map((c) => c.message.content)).size > 1, "different seeds, different replies");
    assert.equal(r.usage!.prompt_tokens, alone[0].usage!.prompt_tokens);
    assert.equal(r.usage!.completion_tokens, alone.reduce((a, x) => a + x.usage!.completion_tokens, 0));
  });

  it("streamed n = 2 with json_object: each index's deltas form valid JSON; one [DONE]", async () => {
    const stream = await client.chat.completions.create({ model: "m", messages, n: 2, seed: 5, temperature: 1, max_tokens: 40, stream: true, response_format: { type: "json_object" } });
    const texts = ["", ""];
    const finishes: (string | null)[] = [null, null];
    for await (const c of stream) {
      for (const ch of c.choices) {
        texts[ch.index] += ch.delta.content ?? "";
        if (ch.finish_reason) finishes[ch.index] = ch.finish_reason;
      }
    }
    for (const t of texts) assert.equal(typeof JSON.parse(t), "object", t);
    assert.ok(finishes.every((f) => f === "stop" || f === "length"));
  });

  it("n out of range and n on /v1/completions are 400s naming n", async () => {
    for (const [path, body] of [
      ["/v1/chat/completions", { messages, n: 17 }],
      ["/v1/chat/completions", { messages, n: 0 }],
      ["/v1/completions", { prompt: "x", n: 2 }],
    ] as const) {
      const r = await post(srv, path, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.param, "n");
    }
  });
});

it("the choices share the prompt's KV: choices 1.. find its full blocks in the pool (Engine in process)", async () => {
  const { Engine } = await import("../../src/server/engine.js");
  const { loadModel } = await import("../../src/model/load.js");
  const loaded = await loadModel(undefined, { backend: "ts" });
  const engine = new Engine(loaded, "m");
  const B = engine.batch.pool.blockSize;
  const content = "Once upon a time there was a dog who liked to run in the park with the other dogs every day.";
  const ends: { choice?: number; cachedTokens?: number }[] = [];
  let promptTokens = 0;
  await engine.run(1, { kind: "chat", messages: [{ role: "user", content }], tools: [], toolChoice: "none", logprobs: null, sampling: { maxTokens: 8, n: 3, seed: 1, temperature: 1, stop: [], ignoreEos: true } }, new AbortController().signal, (m) => {
    if (m.type === "start") promptTokens = m.promptTokens;
    if (m.type === "end") ends.push(m);
    if (m.type === "error") assert.fail(m.message);
  });
  assert.ok(promptTokens >= B, `prompt ${promptTokens} tokens, block ${B}`);
  const byChoice = new Map(ends.map((e) => [e.choice ?? 0, e.cachedTokens ?? 0]));
  assert.equal(byChoice.size, 3);
  assert.equal(byChoice.get(0), 0, "choice 0 computes the prompt");
  // every full block (the last prompt token is always computed, for its logits)
  for (const i of [1, 2]) assert.ok(byChoice.get(i)! >= Math.floor((promptTokens - 1) / B) * B && byChoice.get(i)! > 0, `choice ${i}: ${byChoice.get(i)} cached`);
});
