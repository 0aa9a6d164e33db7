/**
 * streamDecoder({ context }): the deltas of a stream that continues a prompt join to
 * decode(prompt + ids) − decode(prompt), the continuation as OpenAI's completions define it — a SentencePiece
 * first token keeps its leading space ("Zoo" → " was"), which a stream decoded on its own drops.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { readGguf } from "../../src/io/gguf.js";
import { tokenizerFromGguf } from "../../src/tokenizer/gguf-vocab.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { STREAM_CONTEXT_TOKENS } from "../../src/tokenizer/stream.js";
import type { Tokenizer } from "../../src/tokenizer/types.js";
import { fixture } from "../helpers/peers.js";

const tokenizers: [string, () => Tokenizer][] = [
  ["stories260K (Replace/ByteFallback/Fuse/Strip)", () => loadTokenizer(fixture("golden", "stories260K"))],
  ["XVERSE-style (Metaspace/ByteFallback)", () => loadTokenizer(fixture("golden", "tokenizer-xverse-style", "tokenizer.json"))],
  ["tiny-xverse", () => loadTokenizer(fixture("golden", "tiny-xverse"))],
];

const texts = [
  "Zoo was a little girl.",
  "Once upon a time, there was a tiny llama named Lily.",
  "Lily went to the park and saw a big dog",
  "小猫在花园里玩。 他很高兴",
  "I love 🤗 and 𠀋 so much 🦙🦙!",
  "  two leading spaces,  double  gaps and a trailing one ",
  "Numbers 12345 and code: f(x) = x*2;",
];

function streamed(tok: Tokenizer, context: number[] | undefined, ids: number[]): string[] {
  const d = tok.streamDecoder({ skipSpecialTokens: true, context });
  const deltas = ids.map((id) => d.push(id));
  deltas.push(d.flush());
  return deltas;
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

for (const [name, load] of tokenizers) {
  test(`${name}: a stream with the prompt as context is decode(prompt + ids) − decode(prompt), at every split`, () => {
    const tok = load();
    for (const text of texts) {
      const all = tok.encode(text).ids;
      const full = tok.decode(all, { skipSpecialTokens: true });
      for (let k = 1; k < all.length; k++) {
        const prompt = all.slice(0, k), gen = all.slice(k);
        const head = tok.decode(prompt, { skipSpecialTokens: true });
        const deltas = streamed(tok, prompt, gen);
        for (const s of deltas) assert.ok(!s.includes("\ufffd"), `${JSON.stringify(text)} @${k}: delta ${JSON.stringify(s)} holds a broken sequence`);
        const what = `${JSON.stringify(text)} split after ${k} tokens (${JSON.stringify(head)})`;
        if (head.endsWith("\ufffd")) {
          // a prompt of ids cut inside a character: its text ends in U+FFFD (ByteFallback: its whole last run of
          // byte tokens), so no text continues it; the stream shows the completed characters, never repeating
          // more of the prompt than decode(prompt) hid as U+FFFD
          const joined = deltas.join("");
          assert.ok(full.endsWith(joined), `${what}: ${JSON.stringify(joined)} ends decode(all)`);
          assert.ok(joined.length >= full.length - head.length, what);
          assert.ok(joined.length > 0, what);
        } else {
          assert.ok(full.startsWith(head), `${what}: decode(prompt) is a prefix of decode(all)`);
          assert.equal(deltas.join(""), full.slice(head.length), what);
        }
        // without a context the stream is decode(ids) on its own, as today
        assert.equal(streamed(tok, undefined, gen).join(""), tok.decode(gen, { skipSpecialTokens: true }), `${what}, no context`);
      }
    }
  });

  test(`${name}: the first generated token keeps its leading space after the prompt`, () => {
    const tok = load();
    let checked = 0;
    for (const [prompt, cont] of [["Zoo", " was"], ["Once upon a", " time"], ["Lily went to the ", "park"], ["The cat sa", "t"], ["小猫", "在花园"], ["I love", " 🤗"]]) {
      const all = tok.encode(prompt + cont).ids;
      const p = tok.encode(prompt).ids;
      // only where the prompt's tokens are a prefix of the whole text's (a split on a token boundary)
      if (!p.every((id, i) => all[i] === id)) continue;
      const text = streamed(tok, p, all.slice(p.length)).join("");
      assert.equal(prompt + text, tok.decode(all, { skipSpecialTokens: true }), `${prompt} + ${cont}`);
      assert.equal(text, cont, `${prompt} + ${cont}`);
      checked++;
    }
    assert.ok(checked >= 3, `${checked} cases split on a token boundary`);
    // "Zoo" → " was": decoded alone, the stream drops the space
    const ids = tok.encode("Zoo was").ids, k = tok.encode("Zoo").ids.length;
    assert.equal(streamed(tok, ids.slice(0, k), ids.slice(k)).join(""), " was");
    assert.equal(streamed(tok, undefined, ids.slice(k)).join(""), "was");
  });

  test(`${name}: only the prompt's last tokens matter (long prompts, special tokens in the context)`, () => {
    const tok = load();
    const text = "Once upon a time, there was a tiny llama named Lily who loved to play in the big green park every day.";
    const all = tok.encode(text).ids;
    assert.ok(all.length > 3 * STREAM_CONTEXT_TOKENS);
    const k = all.length - 5;
    const full = tok.decode(all, { skipSpecialTokens: true }), head = tok.decode(all.slice(0, k), { skipSpecialTokens: true });
    assert.equal(streamed(tok, all.slice(0, k), all.slice(k)).join(""), full.slice(head.length));
    // a context of special tokens only (BOS, an end-of-turn) is no text: the stream starts as a fresh decode
    const specials = [...new Set([tok.bosId, tok.eosId, 0, 1, 2, 3])].filter((x): x is number => x !== null && tok.isSpecial(x));
    assert.ok(specials.length > 0);
    const rest = tok.encode("Zoo was", { addSpecialTokens: false }).ids;
    assert.equal(streamed(tok, specials, rest).join(""), tok.decode([...specials, ...rest], { skipSpecialTokens: true }));
    // text, then many special tokens: the text before them is still the context
    const ctx = [...tok.encode("Zoo", { addSpecialTokens: false }).ids, ...Array(2 * STREAM_CONTEXT_TOKENS).fill(specials[0])];
    const gen = all.slice(1, 6).filter((id) => !tok.isSpecial(id));
    const whole = tok.decode([...ctx, ...gen], { skipSpecialTokens: true }), before = tok.decode(ctx, { skipSpecialTokens: true });
    assert.ok(whole.startsWith(before));
    assert.equal(streamed(tok, ctx, gen).join(""), whole.slice(before.length));
    // an empty context is the same as none
    assert.equal(streamed(tok, [], rest).join(""), tok.decode(rest, { skipSpecialTokens: true }));
  });
}

test("llama.cpp vocabularies (GGUF): a stream with the prompt as context is stream(prompt + ids) − stream(prompt)", () => {
  const dir = fixture("llama.cpp-vocab-tests");
  const files = readdirSync(dir).filter((f) => f.endsWith(".gguf")).sort();
  assert.ok(files.length >= 9);
  const whole = (tok: Tokenizer, ids: number[]) => streamed(tok, undefined, ids).join("");
  let checked = 0;
  for (const f of files) {
    const tok = tokenizerFromGguf(readGguf(`${dir}/${f}`).metadata);
    const inputs = readFileSync(`${dir}/${f}.inp`, "utf8").split("\n__ggml_vocab_test__\n").slice(0, -1);
    for (const text of [...inputs, ...texts]) {
      const all = tok.encode(text, { addSpecialTokens: false, parseSpecial: false }).ids;
      const full = whole(tok, all);
      const step = Math.max(1, Math.floor(all.length / 12));
      for (let k = 1; k < all.length; k += step) {
        const head = whole(tok, all.slice(0, k));
        // (a prompt cut inside a character shows U+FFFD: no text continues it)
        if (head.endsWith("\ufffd") || !full.startsWith(head)) continue;
        const deltas = streamed(tok, all.slice(0, k), all.slice(k));
        assert.equal(deltas.join(""), full.slice(head.length), `${f}: ${JSON.stringify(text)} split after ${k} tokens`);
        checked++;
      }
    }
  }
  assert.ok(checked > 1000, `${checked} splits`);
});
