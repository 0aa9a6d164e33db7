/** chat() / chatStream() / chatTurn() on the tiny-xverse model and the `xverse prompt` command. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chat, chatStream, chatTurn } from "../../src/chat/chat.js";
import { buildPrompt } from "../../src/chat/prompt.js";
import type { ChatMessage } from "../../src/chat/types.js";
import { loadModel } from "../../src/model/load.js";
import { fixture, repoRoot, requirePeer } from "../helpers/peers.js";
import { HOTEL_DIALOGUE, PRESIDENT, README_NOW, README_PLUGINS } from "./readme-fixtures.js";

const DIR = fixture("golden", "tiny-xverse");
const { model, tokenizer: tok, generationConfig: gc } = await loadModel(DIR, { backend: "ts" });
const config = model.config;

test("chat(): the reply is the concatenated stream; greedy is reproducible; the history is left alone", async () => {
  const history: ChatMessage[] = PRESIDENT.map((m) => ({ ...m }));
  const snapshot = JSON.stringify(history);
  const opts = { generationConfig: gc, greedy: true, maxNewTokens: 12 };
  const reply = await chat(model, tok, history, opts);
  assert.equal(JSON.stringify(history), snapshot);
  const it = chatStream(model, tok, history, opts);
  let streamed = "";
  let r = await it.next();
  while (!r.done) {
    streamed += r.value;
    r = await it.next();
  }
  assert.equal(streamed, reply);
  assert.equal(r.value.text, reply);
  assert.ok(r.value.ids.length <= 12 && r.value.ids.length > 0);
  // the prompt is exactly what buildPrompt makes with the same budget inputs
  assert.deepEqual(r.value.prompt.ids, buildPrompt(tok, history, { config, generationConfig: gc, maxNewTokens: 12 }).ids);
  assert.ok(!reply.includes("<|endoftext|>"));
});

test("chatTurn(): appendToHistory pushes the reply; system goes first; sampling follows generation_config with a seed", async () => {
  const history: ChatMessage[] = [{ role: "user", content: "你好" }];
  let promptText = "";
  const r = await chatTurn(model, tok, history, { generationConfig: gc, seed: 11, maxNewTokens: 6, appendToHistory: true, system: "简短回答", onPrompt: (p) => (promptText = p.text) });
  assert.equal(history.length, 2);
  assert.deepEqual(history[1], { role: "assistant", content: r.text });
  assert.equal(promptText, "Human: 简短回答\nHuman: 你好\n\nAssistant: ");
  const again = await chatTurn(model, tok, history.slice(0, 1), { generationConfig: gc, seed: 11, maxNewTokens: 6, system: "简短回答" });
  assert.equal(again.text, r.text, "same seed, same reply");
});

test("chatStream(): an abort signal stops the reply with finishReason abort", async () => {
  const ac = new AbortController();
  const it = chatStream(model, tok, [{ role: "user", content: "讲个故事" }], { generationConfig: gc, seed: 1, maxNewTokens: 100, signal: ac.signal });
  let n = 0;
  let r = await it.next();
  while (!r.done) {
    if (++n === 2) ac.abort();
    r = await it.next();
  }
  assert.equal(r.value.finishReason, "abort");
  assert.ok(r.value.ids.length < 100);
});

test("xverse prompt prints the v2 prompt of a messages file with tools; ids match the oracle pieces", async () => {
  const dir = mkdtempSync(join(tmpdir(), "xverse-prompt-"));
  try {
    const msgs = join(dir, "m.json");
    const tools = join(dir, "t.json");
    writeFileSync(msgs, JSON.stringify(HOTEL_DIALOGUE));
    writeFileSync(tools, JSON.stringify(README_PLUGINS));
    const out = execFileSync(process.execPath, [join(repoRoot, "bin", "xverse.js"), "prompt", "--model", DIR, "--messages", msgs, "--tools", tools, "--now", "2007-03-09 07:02:15", "--max-new-tokens", "0"], { encoding: "utf8" });
    const p = JSON.parse(out);
    const expected = buildPrompt(tok, HOTEL_DIALOGUE, { config, maxNewTokens: 0, tools: README_PLUGINS, now: README_NOW });
    assert.equal(p.text, expected.text);
    assert.deepEqual(p.ids, expected.ids);
    assert.equal(p.format, "v2");
    // the newest turn survives the 192-token budget of tiny-xverse (max_tokenizer_truncation)
    assert.equal(p.budget, 192);
    const { Tokenizer } = requirePeer("tokenizers");
    const rust = Tokenizer.fromFile(join(DIR, "tokenizer.json"));
    const enc = async (s: string) => (await rust.encode(s, null, { addSpecialTokens: false })).getIds() as number[];
    const tail = [...(await enc("Human: ")), ...(await enc("有免费停车场就更好了。\n\n")), ...(await enc("Assistant: "))];
    assert.deepEqual(p.ids.slice(-tail.length), tail);
    assert.ok(p.ids.length <= 192 && p.truncated);

    let err = "";
    try {
      execFileSync(process.execPath, [join(repoRoot, "bin", "xverse.js"), "prompt", "--model", DIR, "--messages", msgs, "--format", "v1", "--tools", join(dir, "missing.json")], { encoding: "utf8", stdio: "pipe" });
    } catch (e) {
      err = String((e as { stderr: string }).stderr);
    }
    assert.match(err, /^xverse prompt: cannot read .*missing\.json/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
