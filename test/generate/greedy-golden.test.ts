// generate() end to end: greedy ids against PyTorch (tiny-xverse) and llama2.c run.c (stories260K).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { loadModel } from "../../src/model/load.js";
import { generateText } from "../../src/generate/generate.js";
import { fixture } from "../helpers/peers.js";

const tiny = JSON.parse(readFileSync(fixture("golden", "tiny-xverse", "golden.json"), "utf8"));
const stories = JSON.parse(readFileSync(fixture("golden", "stories260K", "golden.json"), "utf8"));

for (const backend of ["ts", "auto"] as const) {
  test(`tiny-xverse greedy and greedy_rep1.1 ids equal golden (${backend} backend)`, async () => {
    const { model, tokenizer } = await loadModel(fixture("golden", "tiny-xverse"), { kvType: "f32", backend, onWarning: () => {} });
    for (const [name, g] of Object.entries(tiny.generate as Record<string, { prompt: number[]; greedy: number[]; "greedy_rep1.1": number[] }>)) {
      const plain = await generateText(model, tokenizer, g.prompt, { greedy: true, maxNewTokens: 32, eosTokenIds: [3] });
      assert.deepEqual(plain.ids, g.greedy, `${name} greedy`);
      const rep = await generateText(model, tokenizer, g.prompt, { greedy: true, maxNewTokens: 32, eosTokenIds: [3], repetitionPenalty: 1.1 });
      assert.deepEqual(rep.ids, g["greedy_rep1.1"], `${name} greedy_rep1.1`);
    }
  });

  test(`stories260K: 255 greedy tokens from BOS equal run.c, and the "Once upon a time" continuation (${backend})`, async () => {
    const { model, tokenizer } = await loadModel(undefined, { backend, onWarning: () => {} });
    const bos = stories.generate.bos;
    const r = await generateText(model, tokenizer, bos.prompt, { greedy: true, maxNewTokens: bos.greedy.length });
    assert.equal(bos.greedy.length, 255);
    assert.deepEqual(r.ids, bos.greedy);
    const once = stories.generate.once;
    assert.deepEqual(tokenizer.encode("Once upon a time").ids, once.prompt, "prompt ids (BOS added by the tokenizer)");
    const r2 = await generateText(model, tokenizer, once.prompt, { greedy: true, maxNewTokens: once.greedy.length });
    assert.deepEqual(r2.ids, once.greedy);
    assert.equal("Once upon a time" + r2.text, once.text);
  });
}
