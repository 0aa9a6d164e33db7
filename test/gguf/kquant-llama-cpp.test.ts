/**
 * llama.cpp (node-llama-cpp, CPU, 1 thread) as the oracle for whole K-quant models: for each of Q2_K … Q6_K, a
 * tiny llama-architecture GGUF whose every matrix (token_embd and output too) is that type, written by our
 * K-quant writers from random Gaussian weights. Both engines run the same file on the same prompt; llama.cpp's
 * full next-token distribution (temperature 1, no truncation) is compared with ours as centred log-probabilities
 * (log p − mean log p = logit − mean logit), normalized by the largest |centred logit|.
 *
 * The engines differ only in arithmetic: llama.cpp multiplies K blocks with Q8_K-quantized activations, our TS
 * backend with f32 ones, our native backend with its own Q8_K rounding. Measured (printed): 1.5e-2 … 2.8e-2 for
 * every type and both backends — the size of activation-quantization noise in this random, untrained model (the
 * same model's q8_0 file moves 1.6e-2 between f32 and int8 activations, kquant-convert.test.ts); bound 5e-2, and
 * the same top token. A wrong bit field, scale or row order in either the writers or the readers would give
 * errors near 1.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend } from "../../src/backend/backend.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { tryLoadNativeBackend } from "../../src/backend/native/index.js";
import { vocabFromTokenizerJson } from "../../src/gguf/export.js";
import { quantizeQ2_K, quantizeQ3_K, quantizeQ4_K, quantizeQ5_K, quantizeQ6_K } from "../../src/gguf/kquantize.js";
import { GGML } from "../../src/gguf/types.js";
import { writeGguf, type GgufWriteTensor } from "../../src/gguf/writer.js";
import { loadModel } from "../../src/model/load.js";
import { llama } from "../helpers/llama-cpp.js";
import { fixture } from "../helpers/peers.js";
import { rng } from "../helpers/rng.js";

const dir = mkdtempSync(join(tmpdir(), "xverse-kq-llama-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));


const V = 512, H = 256, FF = 512, LAYERS = 2, HEADS = 4;
const BOUND = 5e-2;
const PROMPT = [1, 17, 42, 99, 250, 7, 300, 5];

const KTYPES: [string, number, (x: Float32Array) => Uint8Array][] = [
  ["Q2_K", GGML.Q2_K, quantizeQ2_K], ["Q3_K", GGML.Q3_K, quantizeQ3_K], ["Q4_K", GGML.Q4_K, quantizeQ4_K],
  ["Q5_K", GGML.Q5_K, quantizeQ5_K], ["Q6_K", GGML.Q6_K, quantizeQ6_K],
];

function writeModel(path: string, type: number, write: (x: Float32Array) => Uint8Array): void {
  const r = rng(type);
  // sum of three uniforms ≈ Gaussian; matrices scaled by 1.2 / sqrt(cols) so activations stay O(1)
  const gauss = (n: number, scale: number) => Float32Array.from({ length: n }, () => (r() + r() + r() - 1.5) * 2 * scale);
  const ones = () => new Uint8Array(new Float32Array(H).fill(1).buffer);
  const mat = (name: string, rows: number, cols: number, scale = 1.2 / Math.sqrt(cols)): GgufWriteTensor => {
    const bytes = write(gauss(rows * cols, scale));
    return { name, type, shape: [rows, cols], data: () => bytes };
  };
  const tensors: GgufWriteTensor[] = [mat("token_embd.weight", V, H, 1)];
  for (let l = 0; l < LAYERS; l++) {
    tensors.push({ name: `blk.${l}.attn_norm.weight`, type: GGML.F32, shape: [H], data: ones });
    for (const n of ["attn_q", "attn_k", "attn_v", "attn_output"]) tensors.push(mat(`blk.${l}.${n}.weight`, H, H));
    tensors.push({ name: `blk.${l}.ffn_norm.weight`, type: GGML.F32, shape: [H], data: ones });
    tensors.push(mat(`blk.${l}.ffn_gate.weight`, FF, H), mat(`blk.${l}.ffn_up.weight`, FF, H), mat(`blk.${l}.ffn_down.weight`, H, FF));
  }
  tensors.push({ name: "output_norm.weight", type: GGML.F32, shape: [H], data: ones }, mat("output.weight", V, H));
  const vocab = vocabFromTokenizerJson(fixture("golden", "stories260K", "tokenizer.json"), V);
  writeGguf(path, {
    metadata: {
      "general.architecture": "llama", "llama.context_length": 64, "llama.embedding_length": H, "llama.block_count": LAYERS,
      "llama.feed_forward_length": FF, "llama.attention.head_count": HEADS, "llama.attention.head_count_kv": HEADS,
      "llama.attention.layer_norm_rms_epsilon": 1e-5, "llama.rope.dimension_count": H / HEADS,
      "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": vocab.tokens, "tokenizer.ggml.scores": vocab.scores,
      "tokenizer.ggml.token_type": vocab.types, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
      "tokenizer.ggml.add_bos_token": false,
    },
    types: { "llama.attention.layer_norm_rms_epsilon": "FLOAT32", "tokenizer.ggml.scores": "ARRAY[FLOAT32]", "tokenizer.ggml.token_type": "ARRAY[INT32]" },
    tensors,
  });
}

/** llama.cpp's log-probabilities of the token after PROMPT (all V of them). */
async function llamaLogProbs(path: string): Promise<Float64Array> {
  const l = await llama();
  const model = await l.loadModel({ modelPath: path });
  const ctx = await model.createContext({ contextSize: 64, threads: 1, batchSize: 64 });
  const last = PROMPT.length - 1;
  const out = await ctx.getSequence().controlledEvaluate(PROMPT.map((t, i) =>
    i === last ? [t, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }] : t));
  const p = out[last].next.probabilities as Map<number, number>;
  await ctx.dispose();
  await model.dispose();
  assert.equal(p.size, V, "llama.cpp returned the whole distribution");
  const lp = new Float64Array(V);
  for (const [tok, prob] of p) lp[tok] = Math.log(prob);
  return lp;
}

/** Our logits through the real loader: K blocks run as stored (TS twin / native kernels). */
async function ourLogits(path: string, backend: Backend): Promise<Float64Array> {
  const { model } = await loadModel(path, { backend, kvType: "f32" });
  return Float64Array.from(model.forward(PROMPT, model.newCache(PROMPT.length + 1)));
}

function centred(v: Float64Array): Float64Array {
  const m = v.reduce((a, b) => a + b, 0) / v.length;
  return v.map((x) => x - m);
}

test("K-quant models (Q2_K … Q6_K): our engine's next-token log-probabilities match llama.cpp's on the same file", async () => {
  const backends: [string, Backend][] = [["ts", tsBackend]];
  const native = tryLoadNativeBackend({ threads: 2 }).backend;
  if (native) backends.push(["native", native]);
  const measured: Record<string, number> = {};
  for (const [name, type, write] of KTYPES) {
    const path = join(dir, `${name}.gguf`);
    writeModel(path, type, write);
    const theirs = centred(await llamaLogProbs(path));
    for (const [bname, be] of backends) {
      const ours = centred(await ourLogits(path, be));
      let md = 0, mr = 0;
      for (let i = 0; i < V; i++) {
        md = Math.max(md, Math.abs(ours[i] - theirs[i]));
        mr = Math.max(mr, Math.abs(theirs[i]));
      }
      measured[`${name}/${bname}`] = Number((md / mr).toExponential(2));
      assert.ok(md / mr <= BOUND, `${name} on ${bname}: normalized centred-logit error ${md / mr} > ${BOUND}`);
      // and the same most likely token
      const argmax = (v: Float64Array) => v.reduce((b, x, i) => (x > v[b] ? i : b), 0);
      assert.equal(argmax(ours), argmax(theirs), `${name} on ${bname}: top token`);
    }
  }
  console.log(`# llama.cpp vs our engine, normalized centred-logit error: ${JSON.stringify(measured)}`);
});
