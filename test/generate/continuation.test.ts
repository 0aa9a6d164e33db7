/**
 * generate()'s text is the prompt's continuation, as OpenAI's completions define it: the deltas join to
 * decode(prompt + generated) − decode(prompt), so "Zoo" continues " was…", not "was…" (a SentencePiece
 * decoder drops the leading space of a decode's first token; the stream is decoded after the prompt's tokens).
 * `continuation: false` (chat) keeps decode(generated) on its own, as the official model.chat's reply.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { chatTurn } from "../../src/chat/chat.js";
import { generate, type GenerateOptions, type GenerateResult } from "../../src/generate/generate.js";
import { loadModel } from "../../src/model/load.js";
import type { XverseModel } from "../../src/model/xverse.js";
import type { Tokenizer } from "../../src/tokenizer/types.js";
import { fixture } from "../helpers/peers.js";

async function run(model: XverseModel, tok: Tokenizer, prompt: number[], opts: GenerateOptions): Promise<{ deltas: string[]; r: GenerateResult }> {
  const it = generate(model, tok, prompt, opts);
  const deltas: string[] = [];
  for (;;) {
    const x = await it.next();
    if (x.done) return { deltas, r: x.value };
    deltas.push(x.value.text);
  }
}

const skip = { skipSpecialTokens: true };

function checkContinuation(tok: Tokenizer, prompt: number[], deltas: string[], r: GenerateResult, what: string): void {
  // (a random model's stray byte tokens are U+FFFD in decode(all) too: the tokenizer tests check that no delta
  // shows half a character)
  assert.equal(deltas.join(""), r.text, `${what}: deltas join to the result's text`);
  const all = tok.decode([...prompt, ...r.ids], skip), head = tok.decode(prompt, skip);
  assert.ok(all.startsWith(head), `${what}: decode(prompt) ${JSON.stringify(head)} is a prefix of decode(all) ${JSON.stringify(all)}`);
  assert.equal(r.text, all.slice(head.length), `${what}: text = decode(prompt + generated) − decode(prompt)`);
  assert.equal(head + r.text, all, `${what}: echo + text = decode(everything)`);
}

const prompts = ["Zoo", "Once upon a time", "Lily went to the ", "The cat sa", "小猫", "I love 🤗", "Tom said \"Hi", "One day, a big"];

test("stories260K: greedy \"Zoo\" continues with \" was\" (the first token's space kept), = decode(all) − decode(prompt)", async () => {
  const { model, tokenizer: tok } = await loadModel(undefined, { onWarning: () => {} });
  const prompt = tok.encode("Zoo").ids;
  const { deltas, r } = await run(model, tok, prompt, { greedy: true, maxNewTokens: 24 });
  checkContinuation(tok, prompt, deltas, r, "Zoo");
  // computed independently: the first generated token is "▁was", whose space a decode of it alone drops
  assert.equal(tok.idToToken(r.ids[0]), "\u2581was");
  assert.ok(r.text.startsWith(" was"), JSON.stringify(r.text));
  assert.equal(tok.decode(r.ids, skip).startsWith("was"), true);
  // chat's mode: the reply decoded on its own (same ids, no leading space)
  const alone = await run(model, tok, prompt, { greedy: true, maxNewTokens: 24, continuation: false });
  assert.deepEqual(alone.r.ids, r.ids);
  assert.equal(alone.r.text, tok.decode(r.ids, skip));
  assert.equal(alone.deltas.join(""), alone.r.text);
  assert.equal(" " + alone.r.text, r.text);
});

for (const [name, dir] of [["stories260K", undefined], ["tiny-xverse (random weights: byte tokens, CJK, specials)", fixture("golden", "tiny-xverse")]] as const) {
  test(`${name}: for every prompt, streamed text = decode(prompt + generated) − decode(prompt), greedy and sampled`, async () => {
    const { model, tokenizer: tok } = await loadModel(dir, { onWarning: () => {} });
    let spaced = 0;
    for (const p of prompts) {
      const prompt = tok.encode(p).ids;
      // the prompt's own text comes back from decode (what --echo prints)
      assert.equal(tok.decode(prompt, skip), p, `decode(encode(${JSON.stringify(p)}))`);
      for (const opts of [{ greedy: true }, { temperature: 1.5, seed: 7 }] as GenerateOptions[]) {
        const { deltas, r } = await run(model, tok, prompt, { ...opts, maxNewTokens: 40 });
        checkContinuation(tok, prompt, deltas, r, `${name} ${JSON.stringify(p)} ${JSON.stringify(opts)}`);
        if (r.text.startsWith(" ")) spaced++;
      }
    }
    assert.ok(spaced > 0, "some continuation starts with a space");
  });
}

test("tiny-xverse: a prompt ending in special tokens, and a long prompt (only its last tokens are the stream's context)", async () => {
  const { model, tokenizer: tok } = await loadModel(fixture("golden", "tiny-xverse"), { onWarning: () => {} });
  const long = tok.encode("Once upon a time, there was a tiny llama named Lily who loved to play in the big green park every day. Zoo").ids;
  const withSpecial = [...tok.encode("Zoo").ids, 4, 0];
  for (const prompt of [long, withSpecial]) {
    const { deltas, r } = await run(model, tok, prompt, { temperature: 1.2, seed: 3, maxNewTokens: 40 });
    checkContinuation(tok, prompt, deltas, r, JSON.stringify(tok.decode(prompt)));
  }
});

test("chat keeps the official reply, decode(reply ids) on its own: no space carried over from \"Assistant: \"", async () => {
  for (const dir of [undefined, fixture("golden", "tiny-xverse")]) {
    const { model, tokenizer: tok, generationConfig } = await loadModel(dir, { onWarning: () => {} });
    for (const content of ["Tell me a story.", "Hi", "你好"]) {
      const r = await chatTurn(model, tok, [{ role: "user", content }], { generationConfig, greedy: true, maxNewTokens: 24, format: "v2" });
      assert.ok(r.prompt.text.endsWith("Assistant: "), JSON.stringify(r.prompt.text));
      assert.equal(r.text, tok.decode(r.ids, skip), `${JSON.stringify(content)}: ${JSON.stringify(r.text)}`);
    }
  }
  // replies whose first token carries a "▁" (sampled hot from the random tiny-xverse): still no leading space
  const { model, tokenizer: tok, generationConfig } = await loadModel(fixture("golden", "tiny-xverse"), { onWarning: () => {} });
  let spaced = 0;
  for (let seed = 1; seed <= 40 && spaced < 3; seed++) {
    const r = await chatTurn(model, tok, [{ role: "user", content: "Hi" }], { generationConfig, temperature: 3, topK: 0, topP: 1, seed, maxNewTokens: 6, format: "v2" });
    if (!tok.idToToken(r.ids[0])?.startsWith("\u2581")) continue;
    spaced++;
    assert.equal(r.text, tok.decode(r.ids, skip), `seed ${seed}: ${JSON.stringify(r.text)}`);
    assert.ok(!r.text.startsWith(" "), `seed ${seed}: ${JSON.stringify(r.text)}`);
  }
  assert.ok(spaced > 0, "some reply starts with a ▁ token");
});
