// The forward pass against PyTorch golden logits (HF LlamaForCausalLM semantics) on tiny-xverse (f32),
// on the TypeScript reference backend and on the native backend for every instruction set this CPU has.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { openSafetensors } from "../../src/io/safetensors.js";
import { loadConfig } from "../../src/config.js";
import type { Backend } from "../../src/backend/backend.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { tryLoadNativeBackend, type NativeIsa } from "../../src/backend/native/index.js";
import { XverseModel } from "../../src/model/xverse.js";
import { toFloat32 } from "../../src/tensor.js";
import { fixture } from "../helpers/peers.js";
import { maxAbsDiff } from "../helpers/compare.js";

const dir = fixture("golden", "tiny-xverse");
const golden = JSON.parse(readFileSync(fixture("golden", "tiny-xverse", "golden.json"), "utf8"));
const goldenT = openSafetensors(fixture("golden", "tiny-xverse", "golden.safetensors"));

const native = tryLoadNativeBackend({ threads: 2 });
const variants: { name: string; backend: Backend | null; setup(): void; skip: string | false }[] = [
  { name: "ts", backend: tsBackend, setup() {}, skip: false },
  ...((native.backend?.supportedIsas ?? ["avx512"]) as NativeIsa[]).map((isa) => ({
    name: `native ${isa}`,
    backend: native.backend,
    setup: () => native.backend!.setIsa(isa),
    skip: native.backend ? (false as const) : `native addon not available: ${native.reason}`,
  })),
];

for (const v of variants) {
  const tinyModel = (): XverseModel => {
    v.setup();
    return XverseModel.fromSource(loadConfig(dir), openSafetensors(`${dir}/model.safetensors`), { kvType: "f32", backend: v.backend! });
  };

  test(`[${v.name}] tiny-xverse logits match golden within 1e-4 for every prompt (all positions)`, { skip: v.skip }, () => {
    const model = tinyModel();
    for (const [name, p] of Object.entries(golden.prompts as Record<string, { ids: number[] }>)) {
      const cache = model.newCache(p.ids.length);
      const logits = model.forward(p.ids, cache, { logits: "all" });
      const ref = toFloat32(goldenT.read(`logits.${name}`));
      assert.equal(logits.length, ref.length, name);
      const d = maxAbsDiff(logits, ref);
      assert.ok(d <= 1e-4, `${name}: max |Δ| = ${d}`);
    }
  });

  test(`[${v.name}] prefill + token-by-token decode with the KV cache gives the golden logits`, { skip: v.skip }, () => {
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

  test(`[${v.name}] HF's left-padded batch equals our ragged batch (each row without its pads) within 1e-4`, { skip: v.skip }, () => {
    const model = tinyModel();
    const bp = golden.batch_left_padded;
    const B = bp.input_ids.length, T = bp.input_ids[0].length;
    // one forwardBatch over both rows, each holding only its real tokens at positions 0 … n−1
    const rows = (bp.input_ids as number[][]).map((ids, b) => ids.filter((_, t) => bp.attention_mask[b][t]));
    const logits = model.forwardBatch(rows.map((tokens) => ({ seq: model.newCache(T), tokens })), { logits: "all" });
    const ref = toFloat32(goldenT.read("logits.batch_left_padded"));
    const V = model.config.vocabSize;
    let worst = 0, compared = 0, n = 0;
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) {
      if (!bp.attention_mask[b][t]) continue;
      worst = Math.max(worst, maxAbsDiff(logits, ref, n * V, (b * T + t) * V, V));
      compared++;
      n++;
    }
    assert.ok(rows[0].length !== rows[1].length, "rows of different lengths");
    assert.ok(compared > T, "compared both rows");
    assert.ok(worst <= 1e-4, `batch max |Δ| = ${worst}`);
  });
}
