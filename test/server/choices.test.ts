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
