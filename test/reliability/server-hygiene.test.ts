/**
 * Server hygiene from issue 17: a client hanging up mid-upload logs nothing, a body that stops arriving gets 408
 * and its connection back, an oversize prompt is refused before it is tokenized (a small request is not held up
 * behind it), and max_tokens 1e400 is named as not finite.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { PromptBound } from "../../src/server/prompt-bound.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { ApiError } from "../../src/server/errors.js";
import { repoRoot } from "../helpers/peers.js";
import { join } from "node:path";
import { post, startTestServer } from "../server/helpers.js";

/** Sends raw bytes and resolves with everything the server answers until it closes (or `ms` pass). */
function rawExchange(port: number, chunks: string[], opts: { ms: number; hangUp?: boolean }): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, "127.0.0.1");
    let text = "", closed = false;
    s.on("data", (b) => { text += b.toString(); });
    s.on("error", () => {});
    s.on("close", () => { closed = true; clearTimeout(t); resolve({ text, closed }); });
    const t = setTimeout(() => { s.destroy(); resolve({ text, closed }); }, opts.ms);
    s.on("connect", () => {
      for (const c of chunks) s.write(c);
      if (opts.hangUp) setTimeout(() => s.destroy(), 50);
    });
  });
}

test("hang-ups mid-upload log nothing; a stalled body gets 408 and the connection closes", async () => {
  const logs: string[] = [];
  const srv = await startTestServer({ bodyTimeoutMs: 300, log: (l) => logs.push(l) });
  try {
    const head = (len: number) => `POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n\r\n`;
    for (let i = 0; i < 5; i++) await rawExchange(srv.port, [head(1000) + '{"prompt": "'], { ms: 500, hangUp: true });
    const stalled = await rawExchange(srv.port, [head(1000) + '{"prompt": "'], { ms: 3000 });
    assert.match(stalled.text, /^HTTP\/1\.1 408 /, stalled.text);
    assert.match(stalled.text, /did not arrive within 0\.3 s/);
    assert.ok(stalled.closed, "the server closed the connection");
    // the server still serves
    const ok = await post(srv, "/v1/completions", { prompt: "Once", max_tokens: 2 });
    assert.equal(ok.status, 200, ok.text);
    const errors = logs.filter((l) => /error|stack|ECONNRESET|aborted/i.test(l));
    assert.deepEqual(errors, [], "nothing logged for client hang-ups");
  } finally {
    await srv.close();
  }
});

test("an oversize prompt is refused by the character bound (400) without stalling a small request", async () => {
  const srv = await startTestServer();
  try {
    const big = "Once upon a time there was a cat. ".repeat(100_000); // 3.4 MB
    const t0 = performance.now();
    const [a, b, small] = await Promise.all([
      post(srv, "/v1/completions", { prompt: big, max_tokens: 1 }),
      post(srv, "/v1/chat/completions", { messages: [{ role: "user", content: big }], max_tokens: 1 }),
      post(srv, "/v1/completions", { prompt: "Once", max_tokens: 1 }),
    ]);
    const ms = performance.now() - t0;
    assert.equal(a.status, 400, a.text);
    assert.equal(a.json.error.code, "context_length_exceeded");
    assert.equal(a.json.error.param, "prompt");
    assert.equal(b.status, 400, b.text);
    assert.equal(b.json.error.param, "messages[0].content");
    assert.equal(small.status, 200);
    assert.ok(ms < 5000, `${ms.toFixed(0)} ms`);
    // max_tokens 1e400 is JSON for Infinity
    const inf = await post(srv, "/v1/completions", '{"prompt": "Once", "max_tokens": 1e400}');
    assert.equal(inf.status, 400);
    assert.match(inf.json.error.message, /max_tokens must be a finite number/);
  } finally {
    await srv.close();
  }
});

test("PromptBound: never refuses what fits; trims only history that cannot fit", () => {
  const tok = loadTokenizer(join(repoRoot, "models", "stories260K"));
  const b = new PromptBound(tok, 64);
  // oracle: the longest vocab entry, by a plain scan
  let longest = 0;
  for (let i = 0; i < tok.vocabSize; i++) longest = Math.max(longest, (tok.idToToken(i) ?? "").length);
  assert.equal(b.maxTokenChars, longest);
  // a text that fits the context (checked by tokenizing it) always passes, even one of the densest tokens
  const dense = " friend".repeat(60);
  assert.ok(tok.encode(dense, { addSpecialTokens: true }).ids.length <= 64);
  b.checkText(dense, "prompt");
  assert.throws(() => b.checkText("x".repeat(b.maxChars + 1), "prompt"), (e: unknown) => e instanceof ApiError && e.status === 400 && e.param === "prompt");
  const long = "y".repeat(b.maxChars);
  const msgs = [
    { role: "system" as const, content: "be brief" },
    { role: "user" as const, content: long }, { role: "assistant" as const, content: "ok" },
    { role: "user" as const, content: "a" }, { role: "assistant" as const, content: "b" }, { role: "user" as const, content: "c" },
  ];
  assert.deepEqual(b.trimChat(msgs).map((m) => m.content), ["be brief", "a", "b", "c"]);
  const short = msgs.map((m) => ({ ...m, content: m.content.slice(0, 10) }));
  assert.deepEqual(b.trimChat(short), short);
});
