// HF logits processors in HF order against the golden sampling distributions (PyTorch, transformers semantics).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { openSafetensors } from "../../src/io/safetensors.js";
import { applyChain, processorChain, softmax, sample, argmax } from "../../src/generate/processors.js";
import { Rng } from "../../src/generate/rng.js";
import { toFloat32 } from "../../src/tensor.js";
import { fixture } from "../helpers/peers.js";

const golden = JSON.parse(readFileSync(fixture("golden", "tiny-xverse", "golden.json"), "utf8"));
const st = openSafetensors(fixture("golden", "tiny-xverse", "golden.safetensors"));
const chat = toFloat32(st.read("logits.chat"));
const V = 4099;
const lastRow = () => Float32Array.from(chat.subarray(chat.length - V));
const prompt: number[] = golden.prompts.chat.ids;

// The golden names spell out the settings (see golden/README.md and golden.json's sampling_note).
const settings: Record<string, { repetitionPenalty?: number; temperature?: number; topK?: number; topP?: number }> = {
  "rep1.3_only": { repetitionPenalty: 1.3 },
  "temp0.7_topp0.9": { temperature: 0.7, topP: 0.9 },
  topk5: { topK: 5 },
  xverse_default: { repetitionPenalty: 1.1, temperature: 0.5, topK: 30, topP: 0.85 },
};

for (const [name, s] of Object.entries(settings)) {
  test(`probs.${name} within 1e-6`, () => {
    const want = toFloat32(st.read(`probs.${name}`));
    const got = softmax(applyChain(processorChain({ ...s, sample: true }), prompt, lastRow()));
    let worst = 0, kept = 0, keptRef = 0;
    for (let i = 0; i < V; i++) {
      worst = Math.max(worst, Math.abs(got[i] - want[i]));
      if (got[i] > 0) kept++;
      if (want[i] > 0) keptRef++;
    }
    assert.equal(kept, keptRef, "same support");
    assert.ok(worst <= 1e-6, `max |Δ| = ${worst}`);
  });
}

test("seeded sampling is reproducible and follows the distribution", () => {
  const logits = applyChain(processorChain({ topK: 5, sample: true }), prompt, lastRow());
  const p = softmax(logits);
  const draw = (seed: number, n: number) => { const r = new Rng(seed); return Array.from({ length: n }, () => sample(logits, r)); };
  assert.deepEqual(draw(7, 50), draw(7, 50));
  assert.notDeepEqual(draw(7, 50), draw(8, 50));
  const counts = new Map<number, number>();
  for (const id of draw(1, 20000)) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, c] of counts) {
    assert.ok(p[id] > 0, "only kept tokens are drawn");
    assert.ok(Math.abs(c / 20000 - p[id]) < 0.015, `token ${id}: ${c / 20000} vs ${p[id]}`);
  }
  assert.equal(argmax(Float32Array.from([1, 3, 3, 2])), 1, "lowest id on ties");
});
