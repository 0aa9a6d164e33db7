// The core engine's golden tests (test/model/forward-golden.test.ts) on the native backend: tiny-xverse (f32)
// logits vs PyTorch within the same 1e-4, for prefill, KV-cache decode and a left-padded batch, on every ISA.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { loadConfig } from "../../src/config.js";
import { tryLoadNativeBackend, type NativeIsa } from "../../src/backend/native/index.js";
import { openSafetensors } from "../../src/io/safetensors.js";
import { XverseModel } from "../../src/model/xverse.js";
import { toFloat32 } from "../../src/tensor.js";
import { maxAbsDiff } from "../helpers/compare.js";
import { fixture } from "../helpers/peers.js";

const load = tryLoadNativeBackend({ threads: 2 });
const nb = load.backend;
const skip = nb ? false : `native addon not available: ${load.reason}`;
const isas = (nb?.supportedIsas ?? []) as NativeIsa[];

const dir = fixture("golden", "tiny-xverse");
const golden = JSON.parse(readFileSync(fixture("golden", "tiny-xverse", "golden.json"), "utf8"));
const goldenT = openSafetensors(fixture("golden", "tiny-xverse", "golden.safetensors"));

function tinyModel(): XverseModel {
  return XverseModel.fromSource(loadConfig(dir), openSafetensors(`${dir}/model.safetensors`), { backend: nb! });
}

test("native: tiny-xverse logits match golden within 1e-4 (every prompt, every ISA)", { skip }, () => {
  const model = tinyModel();
  for (const isa of isas) {
    nb!.setIsa(isa);
    for (const [name, p] of Object.entries(golden.prompts as Record<string, { ids: number[] }>)) {
      const cache = model.newCache(p.ids.length);
      const logits = model.forward(p.ids, cache, { logits: "all" });
      const ref = toFloat32(goldenT.read(`logits.${name}`));
      assert.equal(logits.length, ref.length, name);
      const d = maxAbsDiff(logits, ref);
      assert.ok(d <= 1e-4, `${isa} ${name}: max |Δ| = ${d}`);
    }
  }
  nb!.setIsa(isas[isas.length - 1]);
});

test("native: prefill + token-by-token decode gives the golden logits", { skip }, () => {
  const model = tinyModel();
  const ids: number[] = golden.prompts.long.ids;
  const ref = toFloat32(goldenT.read("logits.long"));
  const V = model.config.vocabSize;
  const cache = model.newCache(ids.length);
  model.forward(ids.slice(0, 100), cache);
  let worst = 0;
  for (let t = 100; t < ids.length; t++) {
    const l = model.forward([ids[t]], cache);
    worst = Math.max(worst, maxAbsDiff(l, ref, 0, t * V, V));
  }
  assert.ok(worst <= 1e-4, `decode max |Δ| = ${worst}`);
});

test("native: left-padded batch matches golden on unmasked positions", { skip }, () => {
  const model = tinyModel();
  const bp = golden.batch_left_padded;
  const B = bp.input_ids.length;
  const T = bp.input_ids[0].length;
  const cache = model.newCache(T, B);
  const logits = model.forward(bp.input_ids.flat(), cache, {
    batch: B, attentionMask: Uint8Array.from(bp.attention_mask.flat()), logits: "all",
  });
  const ref = toFloat32(goldenT.read("logits.batch_left_padded"));
  const V = model.config.vocabSize;
  let worst = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      if (!bp.attention_mask[b][t]) continue;
      worst = Math.max(worst, maxAbsDiff(logits, ref, (b * T + t) * V, (b * T + t) * V, V));
    }
  }
  assert.ok(worst <= 1e-4, `batch max |Δ| = ${worst}`);
});
