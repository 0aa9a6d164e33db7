/**
 * `xverse convert --type q8_0 | q4_k_m | q5_k_m | q6_k`: llama.cpp's per-tensor type choices (golden layer list
 * of its use_more_bits rule, fallbacks for rows that are not a multiple of 256), and a random XVERSE model with
 * K-sized rows converted to each type: the file loads, and its logits stay within a stated distance of the f32
 * model's on the TypeScript backend and (when built) the native one.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend } from "../../src/backend/backend.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { tryLoadNativeBackend } from "../../src/backend/native/index.js";
import { main } from "../../src/cli/main.js";
import { parseConfig, type XverseConfig } from "../../src/config.js";
import { exportGguf, exportTensorType, useMoreBits, TOKEN_TYPE, type ExportType, type GgufVocab } from "../../src/gguf/export.js";
import { GGML } from "../../src/gguf/types.js";
import { readGguf } from "../../src/io/gguf.js";
import { loadModel } from "../../src/model/load.js";
import type { TensorSource } from "../../src/io/source.js";
import { XverseModel } from "../../src/model/xverse.js";
import { fixture } from "../helpers/peers.js";
import { randomModelSource } from "../helpers/random-model.js";

const dir = mkdtempSync(join(tmpdir(), "xverse-kquant-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

test("useMoreBits is llama.cpp's rule: first and last eighth, every third layer between", () => {
  const picked = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => useMoreBits(i, n));
  assert.deepEqual(picked(32), [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
  assert.deepEqual(picked(40), [0, 1, 2, 3, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31, 34, 35, 36, 37, 38, 39]);
  assert.deepEqual(picked(3), [2]);
});

test("per-tensor types of the K mixtures and their fallbacks", () => {
  const t = (type: ExportType, name: string, cols = 4096, n = 32) => exportTensorType(type, name, cols, n);
  assert.deepEqual(t("q4_k_m", "blk.5.attn_q.weight"), { type: GGML.Q4_K });
  assert.deepEqual(t("q4_k_m", "blk.6.attn_v.weight"), { type: GGML.Q6_K });
  assert.deepEqual(t("q4_k_m", "blk.7.attn_v.weight"), { type: GGML.Q4_K });
  assert.deepEqual(t("q4_k_m", "blk.31.ffn_down.weight", 11008), { type: GGML.Q6_K });
  assert.deepEqual(t("q4_k_m", "output.weight"), { type: GGML.Q6_K });
  assert.deepEqual(t("q4_k_m", "token_embd.weight"), { type: GGML.Q4_K });
  assert.deepEqual(t("q5_k_m", "blk.3.ffn_down.weight"), { type: GGML.Q6_K });
  assert.deepEqual(t("q5_k_m", "blk.4.ffn_down.weight"), { type: GGML.Q5_K });
  assert.deepEqual(t("q6_k", "blk.4.ffn_up.weight"), { type: GGML.Q6_K });
  assert.deepEqual(t("q8_0", "blk.4.ffn_up.weight"), { type: GGML.Q8_0 });
  // rows of 4096 + 32: not K-sized → llama.cpp's legacy fallbacks; 4100: not even 32-sized → F16
  assert.deepEqual(t("q4_k_m", "blk.4.ffn_up.weight", 4128), { type: GGML.Q5_0, wanted: GGML.Q4_K });
  assert.deepEqual(t("q5_k_m", "blk.4.ffn_up.weight", 4128), { type: GGML.Q5_1, wanted: GGML.Q5_K });
  assert.deepEqual(t("q6_k", "blk.4.ffn_up.weight", 4128), { type: GGML.Q8_0, wanted: GGML.Q6_K });
  assert.deepEqual(t("q4_k_m", "blk.4.ffn_up.weight", 4100), { type: GGML.F16, wanted: GGML.Q4_K });
});

function vocab(n: number): GgufVocab {
  const tokens = Array.from({ length: n }, (_, i) => (i < 3 ? ["<unk>", "<s>", "</s>"][i] : `tok${i}`));
  return {
    tokens, scores: tokens.map((_, i) => -i), types: tokens.map((_, i) => (i < 3 ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.NORMAL)),
    bos: 1, eos: 2, pad: null, unk: 0, addBos: false, addEos: false,
  };
}

/** Logits of the last position after feeding `ids` one prompt at a time. */
function logitsOf(model: XverseModel, ids: number[]): Float32Array {
  const cache = model.newCache(ids.length + 1);
  return Float32Array.from(model.forward(ids, cache));
}

function normErr(got: Float32Array, ref: Float32Array): number {
  let md = 0, mr = 0;
  for (let i = 0; i < ref.length; i++) {
    md = Math.max(md, Math.abs(got[i] - ref[i]));
    mr = Math.max(mr, Math.abs(ref[i]));
  }
  return md / mr;
}

test("a random model converted to q8_0 / q4_k_m / q5_k_m / q6_k loads and keeps its logits (TS and native backends)", async () => {
  const cfg = parseConfig({
    model_type: "xverse", hidden_size: 256, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 4,
    intermediate_size: 352, vocab_size: 320, max_position_embeddings: 64, rms_norm_eps: 1e-6,
  }, "random");
  const source = randomModelSource(cfg, 3, 1.2); // hidden 256 (K-sized rows), intermediate 352 (ffn_down falls back)
  const backends: [string, Backend][] = [["ts", tsBackend]];
  const native = tryLoadNativeBackend({ threads: 2 }).backend;
  if (native) backends.push(["native", native]);
  const prompt = [1, 17, 42, 99, 250, 7];
  const ref = logitsOf(XverseModel.fromSource(cfg, source, { kvType: "f32", backend: tsBackend }), prompt);
  // Normalized logit error (max|Δ| / max|logit|) bounds per type. Measured, TS twin (f32 activations) / native
  // (Q8_K / Q8_0 activations): q8_0 0.016 / 0.030, q6_k 0.057 / 0.065, q5_k_m 0.136 / 0.138, q4_k_m 0.252 / 0.264
  // — about 2.5× each type's relative RMS weight error (kquantize.ts), the same factor for all, as expected of a
  // random, untrained 3-layer model (a misplaced bit field or row would give errors near 1).
  const bounds: Record<string, number> = { q8_0: 0.05, q6_k: 0.1, q5_k_m: 0.2, q4_k_m: 0.35 };
  const measured: Record<string, number> = {};
  for (const type of ["q8_0", "q6_k", "q5_k_m", "q4_k_m"] as ExportType[]) {
    const path = join(dir, `random-${type}.gguf`);
    const r = exportGguf(source, cfg, vocab(cfg.vocabSize), path, { type });
    const g = readGguf(path);
    const typeOf = (n: string) => g.tensors.find((t) => t.name === n)!.type;
    if (type === "q4_k_m" || type === "q5_k_m") {
      const base = type === "q4_k_m" ? GGML.Q4_K : GGML.Q5_K, fb = type === "q4_k_m" ? GGML.Q5_0 : GGML.Q5_1;
      assert.equal(typeOf("token_embd.weight"), base);
      assert.equal(typeOf("output.weight"), GGML.Q6_K);
      assert.equal(typeOf("blk.0.attn_v.weight"), base);
      assert.equal(typeOf("blk.2.attn_v.weight"), GGML.Q6_K); // useMoreBits(2, 3)
      assert.equal(typeOf("blk.1.ffn_up.weight"), base);
      assert.equal(typeOf("blk.1.ffn_down.weight"), fb); // 352 columns: not K-sized
      assert.equal(r.warnings.filter((w) => w.includes("ffn_down")).length, 3);
      assert.equal(g.metadata["general.file_type"], type === "q4_k_m" ? 15 : 17);
    }
    if (type === "q6_k") assert.equal(typeOf("blk.1.ffn_down.weight"), GGML.Q8_0);
    assert.equal(typeOf("blk.0.attn_norm.weight"), GGML.F32);
    for (const [name, be] of backends) {
      // the real loader: block types run as stored (the TS twin, or the native kernels with Q8_K activations)
      const got = logitsOf((await loadModel(path, { backend: be, kvType: "f32" })).model, prompt);
      const e = normErr(got, ref);
      measured[`${type}/${name}`] = Number(e.toFixed(4));
      assert.ok(e <= bounds[type], `${type} on ${name}: normalized logit error ${e} > ${bounds[type]}`);
    }
  }
  console.log(`# normalized logit error vs the f32 model: ${JSON.stringify(measured)}`);
});

test("convert CLI accepts the K mixtures and still rejects unknown types", async () => {
  const tiny = fixture("golden", "tiny-xverse");
  const out = join(dir, "tiny-q4km.gguf");
  // tiny-xverse's rows (48) are not K-sized: every matrix falls back (48 % 32 ≠ 0 → F16), listed as warnings
  assert.equal(await main(["convert", "--model", tiny, "--to", "gguf", "--type", "q4_k_m", "--out", out, "--quiet"]), 0);
  assert.equal(readGguf(out).metadata["general.file_type"], 15);
  assert.equal(await main(["convert", "--model", tiny, "--to", "gguf", "--type", "q3_k_m", "--out", join(dir, "x.gguf"), "--quiet"]), 1);
});
