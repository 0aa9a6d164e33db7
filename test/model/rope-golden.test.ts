// RoPE variants past max_position_embeddings (theta 500000, linear ×4, dynamic NTK ×2 — the 256K recipe).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { openSafetensors } from "../../src/io/safetensors.js";
import { loadConfig, parseRopeScaling, type ConfigOverrides } from "../../src/config.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { XverseModel } from "../../src/model/xverse.js";
import { toFloat32 } from "../../src/tensor.js";
import { fixture } from "../helpers/peers.js";
import { maxAbsDiff } from "../helpers/compare.js";

const dir = fixture("golden", "tiny-xverse");
const g = JSON.parse(readFileSync(`${dir}/golden_rope.json`, "utf8"));
const ref = openSafetensors(`${dir}/golden_rope.safetensors`);

for (const [name, v] of Object.entries(g.variants as Record<string, { rope_theta?: number; rope_scaling?: unknown }>)) {
  test(`RoPE ${name}: last 4 positions of a 700-token forward within 1e-4`, () => {
    const overrides: ConfigOverrides = { ropeTheta: v.rope_theta ?? 10000, ropeScaling: parseRopeScaling(v.rope_scaling, name) };
    const cfg = loadConfig(dir, overrides);
    assert.equal(cfg.maxPositionEmbeddings, g.max_position_embeddings);
    const model = XverseModel.fromSource(cfg, openSafetensors(`${dir}/model.safetensors`), { kvType: "f32", backend: tsBackend });
    const ids: number[] = g.ids;
    const logits = model.forward(ids, model.newCache(ids.length), { logits: "all" });
    const V = cfg.vocabSize;
    const want = toFloat32(ref.read(`logits.${name}`));
    const got = logits.subarray((ids.length - 4) * V);
    const d = maxAbsDiff(got, want);
    assert.ok(d <= 1e-4, `${name}: max |Δ| = ${d}`);
  });
}
