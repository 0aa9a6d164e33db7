// bf16 weights from the sharded safetensors and from the torch .bin shards (with a stale inv_freq buffer).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { openSafetensors } from "../../src/io/safetensors.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadConfig } from "../../src/config.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { XverseModel } from "../../src/model/xverse.js";
import { toFloat32 } from "../../src/tensor.js";
import { fixture } from "../helpers/peers.js";
import { maxAbsDiff } from "../helpers/compare.js";

const golden = JSON.parse(readFileSync(fixture("golden", "tiny-xverse", "golden.json"), "utf8"));
const want = toFloat32(openSafetensors(fixture("golden", "tiny-xverse", "golden.safetensors")).read("logits_bf16w.chat"));

for (const d of ["tiny-xverse-bf16-sharded", "tiny-xverse-bin"]) {
  test(`${d}: logits_bf16w.chat within 1e-3, weights kept in bf16`, () => {
    const dir = fixture("golden", d);
    const unused: string[] = [];
    const model = XverseModel.fromSource(loadConfig(dir), openCheckpoint(dir), { kvType: "f32", backend: tsBackend, onUnused: (n) => unused.push(...n) });
    assert.equal(model.weights.layers[0].q.format, "bf16");
    assert.deepEqual(unused, [], "only stale rotary buffers may be left over");
    const ids: number[] = golden.prompts.chat.ids;
    const logits = model.forward(ids, model.newCache(ids.length), { logits: "all" });
    const diff = maxAbsDiff(logits, want);
    assert.ok(diff <= 1e-3, `max |Δ| = ${diff}`);
  });
}
