/**
 * --ctx-size reaches the server's prompt builder: a system prompt longer than max_position_embeddings (stories260K:
 * 512) but within the context size is kept whole, and its blocks are reused by the next request.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { RunningServer } from "../../src/server/http.js";
import { openai, startTestServer } from "./helpers.js";

describe("serve --ctx-size", () => {
  let srv: RunningServer;
  before(async () => { srv = await startTestServer({ load: { backend: "auto", ctxSize: 2048 } }); });
  after(() => srv.close());

  it("keeps a 1,000-token system prompt whole and serves it from the KV pool the second time", async () => {
    const client = openai(srv);
    const system = "Once upon a time, there was a little girl named Lily. She loved to play in the park. ".repeat(45);
    const ask = (q: string) => client.chat.completions.create({ model: "m", max_tokens: 8, temperature: 0, messages: [{ role: "system", content: system }, { role: "user", content: q }] });
    const a = await ask("Who is Lily?");
    assert.ok(a.usage!.prompt_tokens > 1000 && a.usage!.prompt_tokens < 2048, `prompt_tokens ${a.usage!.prompt_tokens}`);
    const b = await ask("Where did she play?");
    const cached = b.usage!.prompt_tokens_details!.cached_tokens!;
    assert.ok(cached >= 960 && cached < b.usage!.prompt_tokens, `cached ${cached} of ${b.usage!.prompt_tokens}`);
  });
});
