/**
 * /tokenize and /detokenize in llama.cpp server's shapes, on stories260K: ids equal the library tokenizer's (the
 * golden-tested one), add_special adds BOS, with_pieces pairs ids with their text, /detokenize inverts /tokenize,
 * ids outside the vocabulary are a 400 naming the entry; both answer while the only generation slot is busy.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { loadModel } from "../../src/model/load.js";
import type { RunningServer } from "../../src/server/http.js";
import { post, startTestServer } from "./helpers.js";

describe("/tokenize and /detokenize", () => {
  let srv: RunningServer;
  before(async () => {
    srv = await startTestServer({ concurrency: 1 });
  });
  after(() => srv.close());

  it("ids, add_special, with_pieces and the round trip", async () => {
    const { tokenizer: tok } = await loadModel(undefined, { backend: "ts" });
    const content = "Once upon a time, Lily saw 3 cats.";
    const plain = await post(srv, "/tokenize", { content });
    assert.equal(plain.status, 200, plain.text);
    assert.deepEqual(plain.json.tokens, tok.encode(content, { addSpecialTokens: false }).ids);
    const withBos = await post(srv, "/tokenize", { content, add_special: true });
    assert.deepEqual(withBos.json.tokens, tok.encode(content, { addSpecialTokens: true }).ids);
    assert.equal(withBos.json.tokens[0], tok.bosId);
    const pieces = await post(srv, "/tokenize", { content, with_pieces: true });
    assert.deepEqual(pieces.json.tokens.map((t: { id: number }) => t.id), plain.json.tokens);
    assert.equal(pieces.json.tokens.map((t: { piece: string }) => t.piece).join("").trim(), content);
    const back = await post(srv, "/detokenize", { tokens: plain.json.tokens });
    assert.equal(back.status, 200);
    assert.equal(back.json.content, content);
  });

  it("bad input: 400s naming the field", async () => {
    const V = srv.scheduler.model.vocabSize;
    const out = await post(srv, "/detokenize", { tokens: [1, V] });
    assert.equal(out.status, 400);
    assert.equal(out.json.error.param, "tokens[1]");
    for (const [path, body, param] of [["/detokenize", { tokens: "1 2" }, "tokens"], ["/tokenize", {}, "content"], ["/tokenize", { content: "x", extra: 1 }, "extra"]] as const) {
      const r = await post(srv, path, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.error.param, param);
    }
  });

  it("answers while the only generation slot is busy (no queue)", async () => {
    const ac = new AbortController();
    const gen = await fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, signal: ac.signal, body: JSON.stringify({ prompt: "Once", max_tokens: 500, ignore_eos: true, stream: true }) });
    const reader = gen.body!.getReader();
    await reader.read();
    assert.equal(srv.scheduler.stats().active, 1);
    const t = await post(srv, "/tokenize", { content: "hello" });
    assert.equal(t.status, 200);
    assert.equal(srv.scheduler.stats().active, 1, "still generating");
    ac.abort();
  });
});
