import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { XverseModel } from "../../src/model/xverse.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { projectionLoader, type QuantLoadOptions } from "../../src/quant/load.js";
import { fixture } from "../helpers/peers.js";
import { openSafetensors } from "../../src/io/safetensors.js";

const tiny = fixture("golden", "tiny-xverse");
const golden = JSON.parse(readFileSync(join(tiny, "golden.json"), "utf8"));

/** Greedy with the KV cache: argmax (lowest id on ties), stop after eos — how golden.json was made. */
function greedy(model: XverseModel, prompt: number[], n: number, eos: number): number[] {
  const cache = model.newCache(prompt.length + n);
  let logits = model.forward(prompt, cache);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
    out.push(best);
    if (best === eos) break;
    logits = model.forward([best], cache);
  }
  return out;
}

function load(opts: QuantLoadOptions): XverseModel {
  const cfg = loadConfig(tiny);
  const src = openCheckpoint(tiny);
  try {
    return XverseModel.fromSource(cfg, src, { kvType: "f32", backend: tsBackend, projection: projectionLoader(cfg, opts) });
  } finally {
    src.close();
  }
}

/**
 * Why "the first 23 tokens" and not all 32: tiny-xverse is a random 48-wide model whose top-2 logit margins along
 * the golden chat continuation go down to 0.009, while int8 per-row weights move its logits by up to ~0.08
 * (measured against the f32 PyTorch logits below). At continuation step 23 the f32 margin is 0.052, so any
 * faithful int8 implementation (the official quantize(8) uses the same scheme) may pick the runner-up there.
 * The test therefore pins (a) the logit error against PyTorch's f32 logits, (b) the exact greedy prefix up to
 * that near-tie, and (c) teacher-forced agreement with the golden token wherever f32's margin exceeds 0.06.
 */
test("int8-quantized tiny-xverse keeps the golden greedy tokens for the chat prompt (up to f32 near-ties)", () => {
  const { prompt, greedy: want } = golden.generate.chat as { prompt: number[]; greedy: number[] };
  const model = load({ quantize: 8 });
  assert.equal(model.weights.layers[0].q.format, "q8_row");
  assert.equal(model.weights.lmHead.format, "f32"); // lm_head is kept
  const V = model.config.vocabSize;

  // (a) prompt logits vs PyTorch f32
  const st = openSafetensors(join(tiny, "golden.safetensors"));
  const ref = st.read("logits.chat").data as Float32Array;
  st.close();
  const got = model.forward(prompt, model.newCache(prompt.length), { logits: "all" });
  let maxd = 0;
  for (let i = 0; i < ref.length; i++) maxd = Math.max(maxd, Math.abs(got[i] - ref[i]));
  assert.ok(maxd < 0.1 && maxd > 0, `int8 max |Δlogit| ${maxd}`);

  // (b) free-running greedy: identical up to the first near-tie
  const free = greedy(model, prompt, want.length, 3);
  assert.deepEqual(free.slice(0, 23), want.slice(0, 23));

  // (c) teacher-forced over the golden sequence: same argmax wherever the f32 model is not near a tie
  const f32 = load({});
  const seq = [...prompt, ...want];
  const lq = model.forward(seq, model.newCache(seq.length), { logits: "all" });
  const lf = f32.forward(seq, f32.newCache(seq.length), { logits: "all" });
  let checked = 0;
  for (let s = 0; s < want.length; s++) {
    const t = prompt.length - 1 + s;
    const row = lf.subarray(t * V, (t + 1) * V);
    const sorted = Array.from(row).sort((a, b) => b - a);
    if (sorted[0] - sorted[1] < 0.06) continue;
    checked++;
    assert.equal(argmax(lq.subarray(t * V, (t + 1) * V)), want[s], `step ${s}`);
  }
  assert.ok(checked >= 16, `only ${checked} steps had a clear margin`);
});

function argmax(a: Float32Array): number {
  let b = 0;
  for (let j = 1; j < a.length; j++) if (a[j] > a[b]) b = j;
  return b;
}

test("int4 variants load, keep lm_head, and their logit error stays below int4's expected size", () => {
  const { prompt } = golden.generate.chat as { prompt: number[] };
  const f32 = load({});
  const lf = f32.forward(prompt, f32.newCache(prompt.length), { logits: "all" });
  const errs: number[] = [];
  for (const opts of [{ quantize: 4 as const }, { quantize: 4 as const, groupSize: 16 }]) {
    const m = load(opts);
    assert.equal(m.weights.layers[0].down.format, opts.groupSize ? "q4_group" : "q4_row");
    const lq = m.forward(prompt, m.newCache(prompt.length), { logits: "all" });
    let se = 0;
    for (let i = 0; i < lf.length; i++) se += (lq[i] - lf[i]) ** 2;
    errs.push(Math.sqrt(se / lf.length));
  }
  // int4 steps are 127/7 ≈ 18× int8's; group-wise scales track local maxima, so it is at least as close.
  assert.ok(errs[0] < 0.5, `int4 per-row rms |Δlogit| ${errs[0]}`);
  assert.ok(errs[1] <= errs[0] * 1.05, `group-wise ${errs[1]} vs per-row ${errs[0]}`);
});
