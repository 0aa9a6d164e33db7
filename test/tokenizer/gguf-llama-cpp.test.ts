/**
 * GGUF vocabularies against llama.cpp itself (node-llama-cpp, a test-only peer): 200 seeded random strings per
 * vocabulary, tokenized with and without parse_special, and decoded. Skips when llama.cpp cannot start here.
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";
import { readGguf } from "../../src/io/gguf.js";
import { tokenizerFromGguf } from "../../src/tokenizer/gguf-vocab.js";
import { llama } from "../helpers/llama-cpp.js";
import { fixture } from "../helpers/peers.js";
import { randomString, rng } from "./random-text.js";

const N = 200;
const dir = fixture("llama.cpp-vocab-tests");
const files = readdirSync(dir).filter((f) => f.endsWith(".gguf")).sort();


for (const f of files) {
  test(`${f}: ${N} random strings tokenize and decode as llama.cpp does`, async (t) => {
    let model: any;
    try {
      model = await (await llama()).loadModel({ modelPath: `${dir}/${f}`, vocabOnly: true });
    } catch (e) {
      t.skip(`llama.cpp (node-llama-cpp) is not usable here: ${(e as Error).message}`);
      return;
    }
    try {
      const ours = tokenizerFromGguf(readGguf(`${dir}/${f}`).metadata);
      const r = rng(5);
      const bad: string[] = [];
      for (let i = 0; i < N; i++) {
        const text = randomString(r, ["<s>", "</s>", "<|endoftext|>", "<|im_start|>", "<fim_prefix>"]);
        for (const parseSpecial of [false, true]) {
          const want = Array.from(model.tokenize(text, parseSpecial) as number[]);
          const got = ours.encode(text, { addSpecialTokens: false, parseSpecial }).ids;
          if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(`${JSON.stringify(text)} (parse_special ${parseSpecial}): ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
        }
        const ids = ours.encode(text, { addSpecialTokens: false }).ids;
        const want = model.detokenize(ids, false) as string;
        if (ours.decode(ids, { skipSpecialTokens: true }) !== want) bad.push(`${JSON.stringify(text)}: decode ${JSON.stringify(ours.decode(ids, { skipSpecialTokens: true }))} != ${JSON.stringify(want)}`);
      }
      assert.equal(bad.length, 0, `${bad.length} differences, e.g.\n${bad.slice(0, 3).join("\n")}`);
    } finally {
      await model.dispose();
    }
  });
}
