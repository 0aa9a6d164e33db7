/**
 * Validation and limits: every bad request is a 4xx with an OpenAI-style JSON error naming the field, and the
 * server keeps serving afterwards. Also: the API key, the body limit, the context limit, the default bind address.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import type { RunningServer } from "../../src/server/http.js";
import { openai, post, raw, startTestServer } from "./helpers.js";

const CHAT = "/v1/chat/completions";
const msgs = [{ role: "user", content: "Hi" }];

function assertError(r: { status: number; json: any }, status: number, param: string | null, code?: string): void { // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.ok(r.json && r.json.error, "body is {error: …}");
  assert.equal(typeof r.json.error.message, "string");
  assert.equal(r.json.error.type, status === 401 ? "authentication_error" : "invalid_request_error");
  assert.equal(r.json.error.param, param);
  if (code) assert.equal(r.json.error.code, code);
}

async function stillServes(srv: RunningServer): Promise<void> {
  const r = await post(srv, "/v1/completions", { model: "m", prompt: "Once", max_tokens: 3, temperature: 0 });
  assert.equal(r.status, 200);
  assert.equal(r.json.usage.completion_tokens, 3);
}

/** Sends `size` bytes without a Content-Length (chunked), so the limit must be enforced while reading. */
function chunkedPost(srv: RunningServer, size: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${srv.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" } }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    });
    req.on("error", reject);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
}

describe("validation and limits", () => {
  let srv: RunningServer;
  before(async () => { srv = await startTestServer(); });
  after(() => srv.close());

  it("binds to 127.0.0.1 by default", () => {
    assert.equal(srv.host, "127.0.0.1");
    assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("malformed and empty JSON → 400 invalid_json", async () => {
    assertError(await post(srv, CHAT, '{"messages": [', {}), 400, null, "invalid_json");
    assertError(await post(srv, CHAT, "", {}), 400, null, "invalid_json");
    assertError(await post(srv, CHAT, "[1, 2]", {}), 400, "body", "invalid_type");
    await stillServes(srv);
  });

  it("wrong types and values name the field", async () => {
    const cases: [unknown, string][] = [
      [{ model: "m", messages: "hi" }, "messages"],
      [{ model: "m" }, "messages"],
      [{ model: "m", messages: [] }, "messages"],
      [{ model: "m", messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
      [{ model: "m", messages: [{ role: "user", content: 5 }] }, "messages[0].content"],
      [{ model: "m", messages: [{ role: "user" }] }, "messages[0].content"],
      [{ model: "m", messages: msgs, max_tokens: "10" }, "max_tokens"],
      [{ model: "m", messages: msgs, max_tokens: -1 }, "max_tokens"],
      [{ model: "m", messages: msgs, temperature: 5 }, "temperature"],
      [{ model: "m", messages: msgs, top_p: 1.5 }, "top_p"],
      [{ model: "m", messages: msgs, top_k: 2.5 }, "top_k"],
      [{ model: "m", messages: msgs, stream: "yes" }, "stream"],
      [{ model: "m", messages: msgs, stop: [1] }, "stop"],
      [{ model: "m", messages: msgs, seed: "x" }, "seed"],
      [{ model: "m", messages: msgs, n: 17 }, "n"],
      [{ model: 7, messages: msgs }, "model"],
      [{ model: "m", messages: msgs, frobnicate: true }, "frobnicate"],
      [{ model: "m", messages: msgs, tools: {} }, "tools"],
      [{ model: "m", messages: msgs, tools: [{ type: "function", function: { name: "bad name!" } }] }, "tools[0].function.name"],
      [{ model: "m", messages: msgs, tool_choice: "required" }, "tool_choice"],
      [{ model: "m", messages: [{ role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{oops" } }] }] }, "messages[0].tool_calls[0].function.arguments"],
    ];
    for (const [body, param] of cases) assertError(await post(srv, CHAT, body), 400, param);
    const comp: [unknown, string][] = [
      [{ model: "m" }, "prompt"],
      [{ model: "m", prompt: 3 }, "prompt"],
      [{ model: "m", prompt: [1, "a"] }, "prompt"],
      [{ model: "m", prompt: ["a", "b"] }, "prompt"],
      [{ model: "m", prompt: "x", logprobs: 99 }, "logprobs"],
      [{ model: "m", prompt: "x", echo: 1 }, "echo"],
      [{ model: "m", prompt: [1, 99999] }, "prompt"],
    ];
    for (const [body, param] of comp) assertError(await post(srv, "/v1/completions", body), 400, param);
    await stillServes(srv);
  });

  it("the openai client sees a BadRequestError with the field", async () => {
    const c = openai(srv);
    await assert.rejects(
      c.chat.completions.create({ model: "m", messages: [{ role: "user", content: "x" }], temperature: "hot" as unknown as number }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === "temperature",
    );
  });

  it("a 10 MB body → 413, declared or chunked, and the server keeps serving", async () => {
    const big = JSON.stringify({ model: "m", prompt: "a".repeat(10 * 1024 * 1024) });
    const r = await post(srv, "/v1/completions", big);
    assertError(r, 413, null, "request_too_large");
    const c = await chunkedPost(srv, 10 * 1024 * 1024);
    assert.equal(c.status, 413);
    assert.equal(JSON.parse(c.body).error.code, "request_too_large");
    await stillServes(srv);
  });

  it("unknown routes → 404 JSON, wrong methods → 405 JSON", async () => {
    for (const path of ["/nope", "/v1/nothing", "/v1/chat", "/v1/models/other-model"]) {
      const r = await raw(srv, path);
      assert.equal(r.status, 404, path);
      assert.equal(typeof r.json.error.message, "string");
    }
    const r = await raw(srv, CHAT);
    assert.equal(r.status, 405);
    assert.equal(r.json.error.code, "method_not_allowed");
    await stillServes(srv);
  });

  it("a prompt longer than the context → 400 with the numbers; max_tokens is capped by the context", async () => {
    const long = Array.from({ length: 600 }, (_, i) => 300 + (i % 50));
    const r = await post(srv, "/v1/completions", { model: "m", prompt: long, max_tokens: 5 });
    assertError(r, 400, "prompt", "context_length_exceeded");
    assert.match(r.json.error.message, /512/);
    assert.match(r.json.error.message, /600/);
    const capped = await post(srv, "/v1/completions", { model: "m", prompt: long.slice(0, 505), max_tokens: 100, temperature: 0, ignore_eos: true });
    assert.equal(capped.status, 200);
    assert.equal(capped.json.usage.completion_tokens, 7);
    assert.equal(capped.json.choices[0].finish_reason, "length");
    // chat: old turns are dropped to fit (as the official builder does), but a last message that cannot fit is a 400
    const story = "Once upon a time there was a little girl named Lily. ".repeat(8);
    const history = Array.from({ length: 6 }, (_, i) => [{ role: "user", content: `${i}: ${story}` }, { role: "assistant", content: story }]).flat();
    const fits = await post(srv, CHAT, { model: "m", messages: [...history, { role: "user", content: "And then?" }], max_tokens: 8 });
    assert.equal(fits.status, 200);
    assert.ok(fits.json.usage.prompt_tokens <= 512);
    const huge = await post(srv, CHAT, { model: "m", messages: [{ role: "user", content: story.repeat(6) }], max_tokens: 8 });
    assertError(huge, 400, "messages[0].content", "context_length_exceeded");
    assert.match(huge.json.error.message, /512/);
    // streaming requests get the same 400 before any event
    const s = await post(srv, "/v1/completions", { model: "m", prompt: long, stream: true });
    assertError(s, 400, "prompt", "context_length_exceeded");
    await stillServes(srv);
  });
});

describe("API key", () => {
  let srv: RunningServer;
  before(async () => { srv = await startTestServer({ apiKey: "s3cret" }); });
  after(() => srv.close());

  it("/v1 needs the bearer key; /health and the pages do not", async () => {
    assertError(await raw(srv, "/v1/models"), 401, null, "invalid_api_key");
    assertError(await raw(srv, "/v1/models", { headers: { Authorization: "Bearer wrong" } }), 401, null, "invalid_api_key");
    await assert.rejects(openai(srv, "wrong").models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError);
    const ok = await openai(srv, "s3cret").chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }], max_tokens: 3 });
    assert.equal(ok.usage!.completion_tokens > 0, true);
    assert.equal((await raw(srv, "/health")).status, 200);
    assert.equal((await raw(srv, "/")).status, 200);
  });
});
