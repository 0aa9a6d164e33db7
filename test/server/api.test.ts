/**
 * The API through the official `openai` package against the embedded stories260K: chat (plain, streaming),
 * completions (plain, streaming, echo + logprobs for log-likelihoods), models, and a tools round trip where
 * constrained decoding makes the tiny model emit a call that parses.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type OpenAI from "openai";
import { loadModel } from "../../src/model/load.js";
import type { RunningServer } from "../../src/server/http.js";
import { openai, startTestServer } from "./helpers.js";

const WEATHER = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string", enum: ["Paris", "Tokyo", "Lima"] } }, required: ["city"] },
  },
};

describe("OpenAI API (openai client)", () => {
  let srv: RunningServer;
  let client: OpenAI;
  before(async () => {
    // f32 KV: the logprob checks below compare with the TS backend, and under f16 KV storage a 1e-7 difference
    // between backends can round a key to the other neighbouring half (1e-2 in a logit, see test/kv/)
    srv = await startTestServer({ load: { backend: "auto", kvType: "f32" } });
    client = openai(srv);
  });
  after(() => srv.close());

  it("lists the model", async () => {
    const list = await client.models.list();
    assert.equal(list.data.length, 1);
    assert.equal(list.data[0].id, "stories260K");
    const one = await client.models.retrieve("stories260K");
    assert.equal(one.id, "stories260K");
  });

  it("chat: a plain reply with usage, deterministic when greedy", async () => {
    const req = { model: "stories260K", messages: [{ role: "user" as const, content: "Tell me a story." }], max_tokens: 24, temperature: 0 };
    const a = await client.chat.completions.create(req);
    const b = await client.chat.completions.create(req);
    assert.equal(a.object, "chat.completion");
    assert.equal(a.choices.length, 1);
    assert.equal(a.choices[0].message.role, "assistant");
    assert.ok(a.choices[0].message.content && a.choices[0].message.content.length > 0);
    assert.ok(["stop", "length"].includes(a.choices[0].finish_reason));
    assert.ok(a.usage!.prompt_tokens > 0 && a.usage!.completion_tokens > 0 && a.usage!.completion_tokens <= 24);
    assert.equal(a.usage!.total_tokens, a.usage!.prompt_tokens + a.usage!.completion_tokens);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  });

  it("chat: streaming deltas add up to the plain reply; usage chunk; system + history accepted", async () => {
    const messages = [
      { role: "system" as const, content: "You tell short stories." },
      { role: "user" as const, content: "Hi" },
      { role: "assistant" as const, content: "Hello! Once upon a time there was a cat." },
      { role: "user" as const, content: "More please." },
    ];
    const plain = await client.chat.completions.create({ model: "m", messages, max_tokens: 30, temperature: 0 });
    const stream = await client.chat.completions.create({ model: "m", messages, max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "", finish: string | null = null, chunks = 0, usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      chunks++;
      if (c.usage) usage = c.usage;
      const ch = c.choices[0];
      if (!ch) continue;
      text += ch.delta.content ?? "";
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    assert.equal(text, plain.choices[0].message.content);
    assert.equal(finish, plain.choices[0].finish_reason);
    assert.ok(chunks > 3);
    const { prompt_tokens_details: hot, ...counts } = usage!;
    const { prompt_tokens_details: cold, ...plainCounts } = plain.usage!;
    assert.deepEqual(counts, plainCounts);
    // the same messages again: every full KV block of the prompt comes from the pool, as OpenAI reports it
    assert.ok(hot!.cached_tokens! > 0 && hot!.cached_tokens! < usage!.prompt_tokens, `cached ${hot!.cached_tokens} of ${usage!.prompt_tokens}`);
    assert.ok(cold!.cached_tokens! < hot!.cached_tokens!);
  });

  it("chat: logprobs and top_logprobs, plain and streamed", async () => {
    const req = { model: "m", messages: [{ role: "user" as const, content: "Hi" }], max_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 2 };
    const r = await client.chat.completions.create(req);
    const content = r.choices[0].logprobs!.content!;
    assert.equal(content.length, r.usage!.completion_tokens);
    assert.equal(content.map((c) => c.token).join(""), r.choices[0].message.content);
    for (const c of content) {
      assert.ok(c.logprob <= 0);
      assert.equal(c.top_logprobs.length, 2);
      // greedy: the chosen token is the most likely one
      assert.equal(c.logprob, Math.max(...c.top_logprobs.map((t) => t.logprob)));
    }
    const s = await client.chat.completions.create({ ...req, stream: true });
    const streamed: number[] = [];
    for await (const c of s) for (const e of c.choices[0]?.logprobs?.content ?? []) streamed.push(e.logprob);
    assert.deepEqual(streamed, content.map((c) => c.logprob));
  });

  it("chat: stop strings and a seed", async () => {
    const r1 = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Go" }], max_tokens: 40, temperature: 0.8, top_p: 0.9, seed: 7 });
    const r2 = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Go" }], max_tokens: 40, temperature: 0.8, top_p: 0.9, seed: 7 });
    assert.equal(r1.choices[0].message.content, r2.choices[0].message.content, "same seed, same sample");
    const full = r1.choices[0].message.content!;
    const stopAt = full.indexOf(" ", 5);
    if (stopAt > 0) {
      const s = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Go" }], max_tokens: 40, temperature: 0.8, top_p: 0.9, seed: 7, stop: [" "] });
      assert.equal(s.choices[0].finish_reason, "stop");
      assert.ok(!s.choices[0].message.content!.includes(" "));
    }
  });

  it("completions: text, streaming and token-id prompts", async () => {
    const r = await client.completions.create({ model: "m", prompt: "Once upon a time", max_tokens: 12, temperature: 0 });
    assert.equal(r.object, "text_completion");
    assert.equal(r.usage!.completion_tokens, 12);
    assert.equal(r.choices[0].finish_reason, "length");
    const s = await client.completions.create({ model: "m", prompt: "Once upon a time", max_tokens: 12, temperature: 0, stream: true });
    let text = "";
    for await (const c of s) text += c.choices[0]?.text ?? "";
    assert.equal(text, r.choices[0].text);
    const echoed = await client.completions.create({ model: "m", prompt: "Once upon a time", max_tokens: 0, echo: true, logprobs: 0 });
    const ids = await client.completions.create({ model: "m", prompt: [[1, 403, 407, 261, 378]], max_tokens: 3, temperature: 0 });
    assert.equal(ids.usage!.prompt_tokens, 5);
    assert.ok(echoed.choices[0].text.startsWith("Once"));
  });

  for (const [what, text] of [["a short prompt", "Once upon a time there was"], ["a prompt longer than one scoring chunk", "Once upon a time, there was a girl. ".repeat(30)]]) {
  it(`completions: echo + logprobs with max_tokens 0 scores ${what} (matches the model's own forward pass)`, async () => {
    const r = await client.completions.create({ model: "m", prompt: text, max_tokens: 0, echo: true, logprobs: 3, temperature: 0 });
    const lp = r.choices[0].logprobs!;
    assert.equal(r.usage!.completion_tokens, 0);
    assert.equal(lp.tokens!.join(""), r.choices[0].text);
    assert.equal(lp.token_logprobs![0], null);
    assert.equal(lp.text_offset!.length, lp.tokens!.length);
    // the reference: log-softmax of the model's logits, computed here without the server
    const { model, tokenizer } = await loadModel(undefined, { backend: "ts", kvType: "f32", onWarning: () => {} });
    const ids = tokenizer.encode(text).ids;
    assert.equal(ids.length, lp.tokens!.length);
    const V = model.config.vocabSize;
    const logits = model.forward(ids, model.newCache(ids.length), { logits: "all" });
    for (let t = 1; t < ids.length; t++) {
      const row = logits.subarray((t - 1) * V, t * V);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
      assert.ok(Math.abs(lp.token_logprobs![t]! - (row[ids[t]] - lse)) < 1e-3, `token ${t}`);
      const top = lp.top_logprobs![t]!;
      assert.equal(Object.keys(top).length, 3);
      assert.ok(Math.max(...Object.values(top)) >= lp.token_logprobs![t]! - 1e-9);
    }
  });
  }

  it("tools: a forced call comes back as tool_calls; the tool result gives a final answer", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "What is the weather in Paris?" }];
    const first = await client.chat.completions.create({ model: "m", messages, tools: [WEATHER], tool_choice: "required", max_tokens: 120, temperature: 0 });
    const choice = first.choices[0];
    assert.equal(choice.finish_reason, "tool_calls");
    const call = choice.message.tool_calls![0];
    assert.equal(call.type, "function");
    assert.ok(call.type === "function");
    assert.equal(call.function.name, "get_weather");
    const args = JSON.parse(call.function.arguments);
    assert.ok(["Paris", "Tokyo", "Lima"].includes(args.city), `city ${args.city}`);
    assert.match(call.id, /^call_/);

    messages.push(choice.message, { role: "tool", tool_call_id: call.id, content: JSON.stringify({ city: args.city, temperature_c: 21 }) });
    const second = await client.chat.completions.create({ model: "m", messages, tools: [WEATHER], max_tokens: 40, temperature: 0 });
    assert.ok(["stop", "length"].includes(second.choices[0].finish_reason));
    assert.equal(second.choices[0].message.tool_calls, undefined);
    assert.ok(typeof second.choices[0].message.content === "string" && second.choices[0].message.content.length > 0);
  });

  it("tools: a named tool_choice streams its call as a tool_calls delta", async () => {
    const other = { type: "function" as const, function: { name: "get_time", parameters: { type: "object", properties: { zone: { type: "string", enum: ["UTC"] } }, required: ["zone"] } } };
    const stream = await client.chat.completions.create({
      model: "m", messages: [{ role: "user", content: "time?" }], tools: [WEATHER, other],
      tool_choice: { type: "function", function: { name: "get_time" } }, max_tokens: 120, temperature: 0, stream: true,
    });
    let name = "", argsText = "", finish: string | null = null, content = "";
    for await (const c of stream) {
      const ch = c.choices[0];
      if (!ch) continue;
      content += ch.delta.content ?? "";
      for (const tc of ch.delta.tool_calls ?? []) {
        name += tc.function?.name ?? "";
        argsText += tc.function?.arguments ?? "";
      }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    assert.equal(finish, "tool_calls");
    assert.equal(name, "get_time");
    assert.deepEqual(JSON.parse(argsText), { zone: "UTC" });
    assert.ok(!content.includes("<|startofthink|>"), "call markup is not shown as content");
  });
});
