/** `xverse convert --to gguf`: writes a complete file, rejects bad flags, and leaves nothing behind on failure. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../../src/cli/main.js";
import { loadConfig } from "../../src/config.js";
import { exportGguf } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { readGguf } from "../../src/io/gguf.js";
import { openGgufModel } from "../../src/io/gguf-model.js";
import { toFloat32 } from "../../src/tensor.js";
import type { TensorSource } from "../../src/io/source.js";
import { fixture } from "../helpers/peers.js";

const dir = mkdtempSync(join(tmpdir(), "xverse-convert-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const tiny = fixture("golden", "tiny-xverse");

test("convert --to gguf writes every tensor and the llama.cpp metadata", async () => {
  const out = join(dir, "tiny.gguf");
  assert.equal(await main(["convert", "--model", tiny, "--to", "gguf", "--type", "f16", "--out", out, "--quiet"]), 0);
  const g = readGguf(out);
  assert.equal(g.tensors.length, 2 + 3 * 9 + 1);
  const m = g.metadata;
  assert.equal(m["general.architecture"], "xverse");
  for (const k of ["context_length", "embedding_length", "block_count", "feed_forward_length", "attention.head_count",
    "attention.head_count_kv", "attention.layer_norm_rms_epsilon", "rope.freq_base", "rope.dimension_count"]) assert.ok(`xverse.${k}` in m, k);
  assert.deepEqual([m["xverse.embedding_length"], m["xverse.block_count"], m["xverse.attention.head_count"], m["xverse.rope.dimension_count"]], [48, 3, 4, 12]);
  assert.equal(m["tokenizer.ggml.model"], "llama");
  assert.equal((m["tokenizer.ggml.tokens"] as string[]).length, 4099);
  assert.deepEqual([m["tokenizer.ggml.bos_token_id"], m["tokenizer.ggml.eos_token_id"], m["tokenizer.ggml.padding_token_id"], m["tokenizer.ggml.add_bos_token"]], [2, 3, 1, false]);
  // XVERSE's six specials are CONTROL tokens, <0xNN> are BYTE tokens
  const types = m["tokenizer.ggml.token_type"] as number[];
  assert.deepEqual(types.slice(0, 8), [3, 3, 3, 3, 3, 3, 6, 6]);
});

test("convert reads bf16 shards and torch .bin shards (F32 GGUF = the stored bf16 values exactly)", async () => {
  for (const sub of ["tiny-xverse-bf16-sharded", "tiny-xverse-bin"]) {
    const model = fixture("golden", sub);
    const out = join(dir, `${sub}.gguf`);
    assert.equal(await main(["convert", "--model", model, "--tokenizer", join(tiny, "tokenizer.json"), "--to", "gguf", "--type", "f32", "--out", out, "--quiet"]), 0);
    const g = openGgufModel(out);
    const src = openCheckpoint(model);
    for (const name of ["model.embed_tokens.weight", "model.layers.2.self_attn.k_proj.weight", "lm_head.weight"]) {
      assert.deepEqual(toFloat32(g.source.read(name)), toFloat32(src.read(name)), `${sub} ${name}`);
    }
  }
});

test("convert: bad flags are one-line errors and write nothing", async () => {
  const out = join(dir, "bad.gguf");
  for (const args of [["--type", "q5_k", "--to", "gguf"], ["--type", "f16"], ["--to", "onnx"], ["--to", "gguf", "--arch", "gpt2"]]) {
    assert.equal(await main(["convert", "--model", tiny, "--out", out, ...args]), 1, args.join(" "));
  }
  assert.equal(await main(["convert", "--model", tiny, "--to", "gguf", "--out", join(dir, "model.safetensors")]), 1);
  assert.equal(existsSync(out), false);
});

test("a failure mid-write leaves neither the file nor a temp file", () => {
  const src = openCheckpoint(tiny);
  let reads = 0;
  const failing: TensorSource = { ...src, names: () => src.names(), has: (n) => src.has(n), info: (n) => src.info(n),
    read: (n) => { if (++reads === 10) throw new Error("disk went away"); return src.read(n); }, close: () => src.close() };
  const sub = mkdtempSync(join(dir, "fail-"));
  assert.throws(() => exportGguf(failing, loadConfig(tiny), join(tiny, "tokenizer.json"), join(sub, "x.gguf"), { type: "q8_0" }), /disk went away/);
  assert.deepEqual(readdirSync(sub), []);
});

test("vocabFromTokenizerJson: SPM scores from merge ranks, token types, a lone NUL token becomes <0x00>", async () => {
  const { writeFileSync } = await import("node:fs");
  const { vocabFromTokenizerJson } = await import("../../src/gguf/export.js");
  const sub = mkdtempSync(join(dir, "tok-"));
  const path = join(sub, "tokenizer.json");
  writeFileSync(path, JSON.stringify({
    added_tokens: [{ id: 0, content: "<pad>", special: true }, { id: 1, content: "<x>", special: false }],
    post_processor: null,
    model: { type: "BPE", unk_token: null, vocab: { "<pad>": 0, "<x>": 1, "\u0000": 2, "<0x41>": 3, a: 4, b: 5, ab: 6, "▁ab": 7, "▁": 8 }, merges: ["a b", "▁ ab"] },
  }));
  const v = vocabFromTokenizerJson(path, 10);
  assert.deepEqual(v.tokens, ["<pad>", "<x>", "<0x00>", "<0x41>", "a", "b", "ab", "▁ab", "▁", "[PAD9]"]);
  assert.deepEqual(v.types, [3, 4, 6, 6, 1, 1, 1, 1, 1, 5]);
  // merges rank 0 and 1 score 0 and −1; tokens no merge makes score below every merge
  assert.deepEqual(v.scores.slice(4, 9), [-(2 + 4), -(2 + 5), -0, -1, -(2 + 8)]);
  assert.equal(v.addBos, false);
  assert.throws(() => vocabFromTokenizerJson(path, 5), /has 9 tokens but the model's vocab_size is 5/);
});
