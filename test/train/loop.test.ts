/** Data pipeline and training loop on a tiny random model with a character-level stand-in tokenizer. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Tokenizer } from "../../src/tokenizer/types.js";
import { collate, encodeAll, epochOrder, pack, readConversations, type Example } from "../../src/train/data.js";
import { train, type TrainConfig } from "../../src/train/loop.js";
import { lossPlotSvg } from "../../src/train/plot.js";
import { lrMultiplier } from "../../src/train/schedule.js";
import { randomModel, tinyConfig } from "./helpers.js";

const cfg = tinyConfig({ vocab_size: 40, hidden_size: 16, intermediate_size: 24, num_attention_heads: 4, num_key_value_heads: 2 });
/** ids 3…39 from characters; 2 = eos, 0 = pad. */
const charTok = {
  encode: (s: string) => ({ ids: [...s].map((c) => 3 + (c.codePointAt(0)! % 37)), tokens: [], offsets: [] }),
} as unknown as Tokenizer;

function tmp(): string { return mkdtempSync(join(tmpdir(), "xverse-train-")); }

test("reads seed JSONL, ShareGPT, OpenAI messages and Alpaca; masks prompts; eos after each reply", () => {
  const d = tmp();
  try {
    writeFileSync(join(d, "seed.jsonl"), [
      JSON.stringify({ id: "1", conversations: [{ from: "human", value: "hi" }, { from: "bot", value: "yo" }, { from: "human", value: "ok?" }, { from: "bot", value: "ok" }] }),
      JSON.stringify({ messages: [{ role: "system", content: "be nice" }, { role: "user", content: "a" }, { role: "assistant", content: "b" }] }),
    ].join("\n") + "\n");
    writeFileSync(join(d, "alpaca.json"), JSON.stringify([{ instruction: "add", input: "1 2", output: "3", history: [["q", "a"]] }]));
    const seed = readConversations(join(d, "seed.jsonl"));
    assert.deepEqual(seed[0], { turns: [{ user: "hi", assistant: "yo" }, { user: "ok?", assistant: "ok" }] });
    assert.deepEqual(seed[1], { system: "be nice", turns: [{ user: "a", assistant: "b" }] });
    const alp = readConversations(join(d, "alpaca.json"));
    assert.deepEqual(alp[0].turns, [{ user: "q", assistant: "a" }, { user: "add\n1 2", assistant: "3" }]);
    const { examples } = encodeAll(charTok, seed, { format: "v1", eosId: 2 });
    const e = examples[0];
    const p1 = "Human: hi\n\nAssistant: ".length, p2 = "Human: ok?\n\nAssistant: ".length;
    assert.equal(e.ids.length, p1 + 3 + p2 + 3);
    assert.deepEqual(e.labels.slice(0, p1), new Array(p1).fill(-100));
    assert.deepEqual(e.labels.slice(p1, p1 + 3), [...charTok.encode("yo").ids, 2]);
    assert.deepEqual(e.labels.slice(p1 + 3, p1 + 3 + p2), new Array(p2).fill(-100));
    assert.deepEqual(e.labels.slice(-3), [...charTok.encode("ok").ids, 2]);
    assert.throws(() => readConversations(join(d, "missing.jsonl")), /cannot read/);
    writeFileSync(join(d, "bad.jsonl"), '{"conversations": [{"from": "robot", "value": "x"}]}\n');
    assert.throws(() => readConversations(join(d, "bad.jsonl")), /bad\.jsonl:1.*unknown "from"/);
  } finally { rmSync(d, { recursive: true, force: true }); }
});

test("collate pads right; packing cuts blocks; epoch order is seeded", () => {
  const b = collate([{ ids: [5, 6, 7], labels: [-100, 6, 7] }, { ids: [8], labels: [8] }], 0);
  assert.deepEqual([...b.inputIds], [5, 6, 7, 8, 0, 0]);
  assert.deepEqual([...b.attentionMask!], [1, 1, 1, 1, 0, 0]);
  assert.deepEqual([...b.labels!], [-100, 6, 7, 8, -100, -100]);
  const p = pack([{ ids: [1, 2, 3], labels: [1, 2, 3] }, { ids: [4, 5, 6], labels: [-100, 5, 6] }], 4);
  assert.deepEqual(p.map((e) => e.ids), [[1, 2, 3, 4], [5, 6]]);
  assert.deepEqual(epochOrder(10, 1, 0), epochOrder(10, 1, 0));
  assert.notDeepEqual(epochOrder(10, 1, 0), epochOrder(10, 1, 1));
});

test("schedules match transformers' get_*_schedule_with_warmup", () => {
  assert.equal(lrMultiplier("cosine", 0, 10, 100), 0);
  assert.equal(lrMultiplier("cosine", 5, 10, 100), 0.5);
  assert.equal(lrMultiplier("cosine", 10, 10, 100), 1);
  assert.ok(Math.abs(lrMultiplier("cosine", 55, 10, 100) - 0.5) < 1e-12);
  assert.equal(lrMultiplier("linear", 55, 10, 100), 0.5);
  assert.equal(lrMultiplier("linear", 100, 10, 100), 0);
  assert.equal(lrMultiplier("constant_with_warmup", 3, 4, 100), 0.75);
  assert.equal(lrMultiplier("constant", 0, 4, 100), 1);
});

function examples(): Example[] {
  const convs = Array.from({ length: 12 }, (_, i) => ({ turns: [{ user: `q${i % 4}`, assistant: `answer ${"ab"[i % 2]}${i % 3}` }] }));
  return encodeAll(charTok, convs, { format: "v1", eosId: 2 }).examples;
}
const base: TrainConfig = { lr: 5e-3, epochs: 3, batchSize: 4, gradAccum: 1, maxGradNorm: 1, schedule: "cosine", warmupSteps: 2, weightDecay: 0.01, seed: 1 };

test("training lowers the loss; eval loss and SVG plot", async () => {
  const m = randomModel(cfg, 2, "f32");
  const ex = examples();
  const s = await train(m, ex, ex.slice(0, 4), { ...base, epochs: 6, evalEvery: 6 }, { padId: 0 });
  const losses = s.history.filter((e) => e.loss !== undefined).map((e) => e.loss!);
  const evals = s.history.filter((e) => e.evalLoss !== undefined).map((e) => e.evalLoss!);
  assert.equal(losses.length, 18);
  assert.ok(losses.at(-1)! < losses[0] * 0.7, `loss ${losses[0]} → ${losses.at(-1)}`);
  assert.equal(evals.length, 3);
  assert.ok(evals.at(-1)! < evals[0]);
  const svg = lossPlotSvg(s.history);
  assert.match(svg, /^<svg[^>]*xmlns/);
  assert.equal((svg.match(/<circle/g) ?? []).length, 3);
});

test("gradient accumulation: batch 2 × accumulate 2 == batch 4 (token-weighted)", async () => {
  const ex = examples().slice(0, 4);
  const a = randomModel(cfg, 4, "f64"), b = randomModel(cfg, 4, "f64");
  const c1: TrainConfig = { ...base, epochs: 1, shuffle: false, schedule: "constant", warmupSteps: 0 };
  await train(a, ex, null, { ...c1, batchSize: 4, gradAccum: 1 }, { padId: 0 });
  await train(b, ex, null, { ...c1, batchSize: 2, gradAccum: 2 }, { padId: 0 });
  for (const [n, v] of a.params) {
    const w = b.p(n).data;
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(w[i] - v.data[i]) < 1e-9, n);
  }
});

test("a run interrupted after a checkpoint resumes to the same weights as an uninterrupted run", async () => {
  const ex = examples();
  const d1 = tmp(), d2 = tmp();
  try {
    const full = randomModel(cfg, 6, "f32");
    await train(full, ex, null, { ...base, saveEvery: 2 }, { padId: 0, checkpointDir: d1 });
    const part = randomModel(cfg, 6, "f32");
    await assert.rejects(() => train(part, ex, null, { ...base, saveEvery: 2 }, {
      padId: 0, checkpointDir: d2,
      hooks: { onCheckpoint: (_d, step) => { if (step === 4) throw new Error("crash"); } },
    }), /crash/);
    assert.ok(existsSync(join(d2, "checkpoint", "trainer_state.json")));
    assert.equal(JSON.parse(readFileSync(join(d2, "checkpoint", "trainer_state.json"), "utf8")).step, 4);
    const resumed = randomModel(cfg, 99, "f32"); // different start: everything must come from the checkpoint
    const s = await train(resumed, ex, null, { ...base, saveEvery: 2 }, { padId: 0, checkpointDir: d2, resume: true });
    assert.equal(s.step, 9);
    for (const [n, v] of full.params) assert.deepEqual(resumed.p(n).data, v.data, n);
  } finally {
    rmSync(d1, { recursive: true, force: true });
    rmSync(d2, { recursive: true, force: true });
  }
});

test("an aborted run stops after the step, saves a checkpoint, and resumes to the uninterrupted result", async () => {
  const ex = examples();
  const d1 = tmp(), d2 = tmp();
  try {
    const full = randomModel(cfg, 8, "f32");
    await train(full, ex, null, base, { padId: 0, checkpointDir: d1 });
    const stop = new AbortController();
    const part = randomModel(cfg, 8, "f32");
    const s1 = await train(part, ex, null, base, { padId: 0, checkpointDir: d2, signal: stop.signal, hooks: { onLog: (e) => { if (e.step === 5) stop.abort(); } } });
    assert.equal(s1.stopped, true);
    assert.equal(s1.step, 5);
    const resumed = randomModel(cfg, 1, "f32");
    const s2 = await train(resumed, ex, null, base, { padId: 0, checkpointDir: d2, resume: true });
    assert.equal(s2.step, 9);
    for (const [n, v] of full.params) assert.deepEqual(resumed.p(n).data, v.data, n);
  } finally {
    rmSync(d1, { recursive: true, force: true });
    rmSync(d2, { recursive: true, force: true });
  }
});
