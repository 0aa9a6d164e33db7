/**
 * The server's batched decoder gives exactly what generate() gives one request at a time — greedy and seeded
 * sampling, prompts of different lengths, requests joining and leaving mid-batch (by block table: nothing is
 * copied), an abort — while running the requests' steps as one forward pass.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generateText, type GenerateOptions, type GenerateResult } from "../../src/generate/generate.js";
import { loadModel } from "../../src/model/load.js";
import { BatchDecoder, STEP_TOKENS } from "../../src/server/batch.js";
import type { XverseModel } from "../../src/model/xverse.js";
import { XverseError } from "../../src/errors.js";
import type { Tokenizer } from "../../src/tokenizer/types.js";

const decoder = (model: XverseModel, tok: Tokenizer) => new BatchDecoder(model, tok, model.createPool(), model.ctxSize);

const sleepTicks = async (n: number) => { for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r)); };

for (const backend of ["ts", "auto"] as const) {
  describe(`batched decoding (${backend} backend)`, () => {
    it("matches generate() per request, with requests joining and leaving mid-batch", async () => {
      const { model, tokenizer } = await loadModel(undefined, { backend, onWarning: () => {} });
      const cases: { prompt: string; opts: GenerateOptions; delay: number }[] = [
        { prompt: "Once upon a time", opts: { greedy: true, maxNewTokens: 60, eosTokenIds: [] }, delay: 0 },
        { prompt: "Lily and Ben went to the park to play with a big red ball", opts: { greedy: true, maxNewTokens: 25 }, delay: 0 },
        { prompt: "The cat", opts: { temperature: 0.9, topK: 20, topP: 0.9, seed: 42, maxNewTokens: 40, eosTokenIds: [] }, delay: 3 },
        { prompt: "One day, a little bird", opts: { greedy: true, maxNewTokens: 80, repetitionPenalty: 1.1, eosTokenIds: [] }, delay: 10 },
        { prompt: "Tom had a dog", opts: { greedy: true, maxNewTokens: 5, stopStrings: ["."] }, delay: 20 },
        // longer than one prefill chunk: it is prefilled over several turns while the others decode
        { prompt: "Once upon a time, there was a girl. ".repeat(30), opts: { greedy: true, maxNewTokens: 30, eosTokenIds: [] }, delay: 6 },
      ];
      assert.ok(tokenizer.encode(cases[5].prompt).ids.length > STEP_TOKENS);
      const expected: GenerateResult[] = [];
      for (const c of cases) expected.push(await generateText(model, tokenizer, tokenizer.encode(c.prompt).ids, c.opts));
      const dec = decoder(model, tokenizer);
      const results = await Promise.all(cases.map(async (c) => {
        await sleepTicks(c.delay);
        const it = dec.generate(tokenizer.encode(c.prompt).ids, c.opts);
        let text = "";
        for (;;) {
          const r = await it.next();
          if (r.done) return { ...r.value, streamed: text };
          text += r.value.text;
        }
      }));
      results.forEach((r, i) => {
        assert.deepEqual(r.ids, expected[i].ids, `case ${i}: ids`);
        assert.equal(r.text, expected[i].text, `case ${i}: text`);
        assert.equal(r.streamed, expected[i].text, `case ${i}: streamed deltas`);
        assert.equal(r.finishReason, expected[i].finishReason, `case ${i}: finish`);
      });
      assert.ok(dec.maxBatchSeen >= 3, `largest batch ${dec.maxBatchSeen}`);
      assert.equal(dec.active, 0);
    });

    it("an aborted request leaves; the others are unaffected", async () => {
      const { model, tokenizer } = await loadModel(undefined, { backend, onWarning: () => {} });
      const opts: GenerateOptions = { greedy: true, maxNewTokens: 50, eosTokenIds: [] };
      const ids = tokenizer.encode("Once upon a time").ids;
      const want = await generateText(model, tokenizer, ids, opts);
      const dec = decoder(model, tokenizer);
      const ac = new AbortController();
      const run = async (signal?: AbortSignal) => {
        const it = dec.generate(ids, { ...opts, signal });
        let n = 0;
        for (;;) {
          const r = await it.next();
          if (r.done) return r.value;
          if (signal && ++n === 5) ac.abort();
        }
      };
      const [a, b] = await Promise.all([run(ac.signal), run()]);
      assert.equal(a.finishReason, "abort");
      assert.ok(a.ids.length < 10);
      assert.deepEqual(b.ids, want.ids);
      // a consumer that stops pulling (return()) also leaves
      const it = dec.generate(ids, opts);
      await it.next();
      await it.return(undefined as never);
      await sleepTicks(5);
      assert.equal(dec.active, 0);
    });
  });
}

describe("batched decoding: a small KV budget", () => {
  it("a newcomer waits for blocks and then gives its solo tokens; a request that cannot fit fails alone with kv_budget", async () => {
    const { model, tokenizer } = await loadModel(undefined, { backend: "ts", onWarning: () => {} });
    const opts: GenerateOptions = { greedy: true, maxNewTokens: 60, eosTokenIds: [] };
    const a = tokenizer.encode("Once upon a time").ids, b = tokenizer.encode("The cat sat").ids;
    const want = [await generateText(model, tokenizer, a, opts), await generateText(model, tokenizer, b, opts)];
    // three 32-token blocks: one request of ≤ 96 tokens at a time
    const pool = model.createPool({ budgetBytes: 3 * model.createPool().layout.blockBytes });
    const dec = new BatchDecoder(model, tokenizer, pool, model.ctxSize);
    const run = async (ids: number[], o: GenerateOptions) => {
      const it = dec.generate(ids, o);
      for (;;) { const r = await it.next(); if (r.done) return r.value; }
    };
    const got = await Promise.all([run(a, opts), run(b, opts)]);
    assert.deepEqual(got.map((r) => r.ids), want.map((r) => r.ids));
    await assert.rejects(run(a, { ...opts, maxNewTokens: 200 }), (e: unknown) => e instanceof XverseError && e.code === "kv_budget");
    assert.equal(pool.stats().usedBlocks, 0);
    assert.equal(dec.active, 0);
  });
});

describe("batched decoding: memory", () => {
  it("gives every request's KV blocks back: after hundreds of requests no block is held and the pool never grew past its first bursts", async () => {
    const { model, tokenizer } = await loadModel(undefined, { backend: "ts", onWarning: () => {} });
    const dec = decoder(model, tokenizer);
    const ids = tokenizer.encode("Once upon a time, there was a girl. ".repeat(4)).ids;
    const burst = async (n: number) => Promise.all(Array.from({ length: n }, async (_, i) => {
      const ac = new AbortController();
      const it = dec.generate(ids, { greedy: true, maxNewTokens: 40 + (i % 5) * 20, eosTokenIds: [], signal: ac.signal });
      let k = 0;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        if (i % 4 === 0 && ++k === 3) ac.abort(); // a quarter leave early
      }
    }));
    await burst(32);
    const first = dec.pool.stats();
    let during = 0;
    for (let round = 0; round < 8; round++) {
      const p = burst(32);
      await sleepTicks(20);
      during = Math.max(during, dec.pool.stats().usedBlocks);
      await p;
    }
    assert.equal(dec.active, 0);
    const after = dec.pool.stats();
    assert.ok(during > 0, "the bursts did hold KV blocks while running");
    assert.equal(after.usedBlocks, 0, "no block is held once every request ended");
    assert.equal(after.bytes, first.bytes, `pool memory: ${first.bytes} after the first burst, ${after.bytes} after nine`);
    assert.ok(after.hits > 0, "the shared prompt's blocks were reused");
  });
});
