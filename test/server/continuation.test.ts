/**
 * /v1/completions returns the prompt's continuation as OpenAI, vLLM and llama.cpp do: prompt + text is the
 * decode of every id, so "Zoo" comes back as " was…" (the first generated token's space kept), plain and
 * streamed, and with echo the text is decode(everything).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { generateText } from "../../src/generate/generate.js";
import type { RunningServer } from "../../src/server/http.js";
import { loadModel } from "../../src/model/load.js";
import { post, startTestServer } from "./helpers.js";

describe("/v1/completions: the text continues the prompt", () => {
  let srv: RunningServer;
  before(async () => {
    srv = await startTestServer();
  });
  after(() => srv.close());

  it("\"Zoo\": text starts with a space and prompt + text = decode(prompt + generated ids)", async () => {
    // the ids, generated in process (greedy, the embedded model's eos)
    const { model, tokenizer: tok, generationConfig: gc } = await loadModel(undefined, { onWarning: () => {} });
    for (const prompt of ["Zoo", "Once upon a time", "Lily went to the ", "小猫"]) {
      const ids = tok.encode(prompt).ids;
      const g = await generateText(model, tok, ids, { greedy: true, maxNewTokens: 16, eosTokenIds: gc.eosTokenIds });
      const all = tok.decode([...ids, ...g.ids], { skipSpecialTokens: true });
      assert.ok(all.startsWith(prompt));

      const r = await post(srv, "/v1/completions", { model: "m", prompt, max_tokens: 16, temperature: 0 });
      assert.equal(r.status, 200, r.text);
      const text: string = r.json.choices[0].text;
      assert.equal(prompt + text, all, `${JSON.stringify(prompt)}: prompt + text`);
      assert.equal(r.json.usage.completion_tokens, g.ids.length);
      if (prompt === "Zoo") assert.ok(text.startsWith(" was"), JSON.stringify(text));

      // streamed: the chunks add up to the same text
      const res = await fetch(`${srv.url}/v1/completions`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: "m", prompt, max_tokens: 16, temperature: 0, stream: true }),
      });
      const events = (await res.text()).split("\n\n").filter((e) => e.startsWith("data: ") && e !== "data: [DONE]").map((e) => JSON.parse(e.slice(6)));
      assert.equal(events.map((e) => e.choices?.[0]?.text ?? "").join(""), text, `${JSON.stringify(prompt)} streamed`);

      // echo: the prompt's text, then the continuation
      const e = await post(srv, "/v1/completions", { model: "m", prompt, max_tokens: 16, temperature: 0, echo: true });
      assert.equal(e.json.choices[0].text, all, `${JSON.stringify(prompt)} echo`);
    }
  });

  it("a token-id prompt: prompt text + text = decode(all ids)", async () => {
    const { tokenizer: tok } = await loadModel(undefined, { onWarning: () => {} });
    const ids = tok.encode("Zoo").ids;
    const r = await post(srv, "/v1/completions", { model: "m", prompt: ids, max_tokens: 8, temperature: 0, logprobs: 0 });
    assert.equal(r.status, 200, r.text);
    const text: string = r.json.choices[0].text;
    assert.ok(text.startsWith(" "), JSON.stringify(text));
    // the per-token pieces join to the text
    assert.equal(r.json.choices[0].logprobs.tokens.join(""), text);
  });
});
