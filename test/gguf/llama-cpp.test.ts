/**
 * llama.cpp (node-llama-cpp 3.21.1, CPU build, 1 thread) as the oracle:
 *  - dequantization: for every block type, a GGUF whose token_embd holds random blocks and whose one layer is
 *    all zeros, so llama.cpp's embedding output is rmsnorm(its own dequantized row). With eps = 100 the norm is
 *    nearly linear, so a wrong scale shows up too. Compared with rmsnorm(our dequantized row).
 *  - our GGUF export of stories260K: llama.cpp's greedy continuation from BOS vs the golden 255 tokens and vs
 *    our engine on the same quantized file, and its tokenization of our SPM vocabulary vs the golden prompt.
 *  - our reader vs node-llama-cpp's GGUF parser on llama.cpp's vocab files.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, parseConfig } from "../../src/config.js";
import { openGgufModel } from "../../src/io/gguf-model.js";
import { ggufProjection } from "../../src/gguf/weights.js";
import { XverseModel } from "../../src/model/xverse.js";
import type { Backend } from "../../src/backend/backend.js";
import { loadNativeBackend } from "../../src/backend/native/index.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { BLOCK_GEOMETRY, type BlockFormat } from "../../src/backend/ts/blocks.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { readGguf } from "../../src/io/gguf.js";
import { exportGguf, vocabFromTokenizerJson, type ExportType } from "../../src/gguf/export.js";
import { dequantize } from "../../src/gguf/quants.js";
import { ggmlTypeByName } from "../../src/gguf/types.js";
import { writeGguf, type GgufWriteTensor } from "../../src/gguf/writer.js";
import { f32ToF16, f32ToBf16 } from "../../src/tensor.js";
import { greedyFromBos as ourGreedy } from "../helpers/greedy.js";
import { llama } from "../helpers/llama-cpp.js";
import { fixture, importPeer } from "../helpers/peers.js";

const dir = mkdtempSync(join(tmpdir(), "xverse-gguf-llama-"));
const native = loadNativeBackend({ threads: 1 });
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));


/** The block types under test, as ggml names them; their f16 scale fields are kept finite and moderate. */
const BLOCK_TYPES = ["Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"];

function xorshift(seed: number): () => number {
  let s = seed;
  return () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return s / 2 ** 32; };
}

function randomTensor(typeName: string, nel: number, rnd: () => number): Uint8Array {
  if (typeName === "F16" || typeName === "BF16") {
    const h = new Uint16Array(nel).map(() => (typeName === "F16" ? f32ToF16 : f32ToBf16)((rnd() - 0.5) * 4));
    return new Uint8Array(h.buffer);
  }
  const t = ggmlTypeByName(typeName)!;
  const nb = nel / t.blockSize, b = new Uint8Array(nb * t.typeSize);
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(rnd() * 256);
  for (let k = 0; k < nb; k++) {
    for (const o of BLOCK_GEOMETRY[typeName.toLowerCase() as BlockFormat].f16) {
      const h = f32ToF16((rnd() - 0.5) * 0.2);
      b[k * t.typeSize + o] = h & 255;
      b[k * t.typeSize + o + 1] = h >> 8;
    }
  }
  return b;
}

test("dequantization of every block type agrees with llama.cpp (F16, BF16, Q4_0 … Q6_K)", async () => {
  const V = 512, H = 256, FF = 256, EPS = 100;
  const vocab = vocabFromTokenizerJson(fixture("golden", "stories260K", "tokenizer.json"), V);
  const f32 = (n: number, v: number) => () => new Uint8Array(new Float32Array(n).fill(v).buffer);
  const l = await llama();
  const rnd = xorshift(20261127);
  for (const typeName of ["F16", "BF16", ...BLOCK_TYPES]) {
    const type = ggmlTypeByName(typeName)!.id;
    const embd = randomTensor(typeName, V * H, rnd);
    const tensors: GgufWriteTensor[] = [
      { name: "token_embd.weight", type, shape: [V, H], data: () => embd },
      { name: "blk.0.attn_norm.weight", type: 0, shape: [H], data: f32(H, 1) },
      ...["attn_q", "attn_k", "attn_v", "attn_output"].map((n) => ({ name: `blk.0.${n}.weight`, type: 0, shape: [H, H], data: f32(H * H, 0) })),
      { name: "blk.0.ffn_norm.weight", type: 0, shape: [H], data: f32(H, 1) },
      { name: "blk.0.ffn_gate.weight", type: 0, shape: [FF, H], data: f32(FF * H, 0) },
      { name: "blk.0.ffn_up.weight", type: 0, shape: [FF, H], data: f32(FF * H, 0) },
      { name: "blk.0.ffn_down.weight", type: 0, shape: [H, FF], data: f32(FF * H, 0) },
      { name: "output_norm.weight", type: 0, shape: [H], data: f32(H, 1) },
      { name: "output.weight", type: 0, shape: [V, H], data: f32(V * H, 0) },
    ];
    const path = join(dir, `deq-${typeName}.gguf`);
    writeGguf(path, {
      metadata: {
        "general.architecture": "llama", "llama.context_length": 64, "llama.embedding_length": H, "llama.block_count": 1,
        "llama.feed_forward_length": FF, "llama.attention.head_count": 2, "llama.attention.head_count_kv": 2,
        "llama.attention.layer_norm_rms_epsilon": EPS, "llama.rope.dimension_count": H / 2,
        "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": vocab.tokens, "tokenizer.ggml.scores": vocab.scores,
        "tokenizer.ggml.token_type": vocab.types, "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.add_bos_token": false,
      },
      types: { "llama.attention.layer_norm_rms_epsilon": "FLOAT32", "tokenizer.ggml.scores": "ARRAY[FLOAT32]", "tokenizer.ggml.token_type": "ARRAY[INT32]" },
      tensors,
    });
    const ours = dequantize(type, embd, V * H);
    const model = await l.loadModel({ modelPath: path });
    const ctx = await model.createEmbeddingContext({ contextSize: 64, threads: 1 });
    let worst = 0, scale = 0;
    for (const id of [3, 77, 258, 259, 300, 444, 511]) {
      const e = (await ctx.getEmbeddingFor([id])).vector as readonly number[];
      const x = ours.subarray(id * H, (id + 1) * H);
      let ss = 0;
      for (const v of x) ss += v * v;
      const r = 1 / Math.sqrt(ss / H + EPS);
      for (let i = 0; i < H; i++) {
        worst = Math.max(worst, Math.abs(e[i] - x[i] * r));
        scale = Math.max(scale, Math.abs(x[i] * r));
      }
    }
    await ctx.dispose();
    await model.dispose();
    assert.ok(worst <= 2e-6 * scale, `${typeName}: max |Δ| ${worst} vs max |y| ${scale}`);
  }
});

const stories = fixture("golden", "stories260K");
const golden = JSON.parse(readFileSync(join(stories, "golden.json"), "utf8")).generate;

async function greedyFromBos(path: string, n: number): Promise<{ ids: number[]; once: number[] }> {
  const l = await llama();
  const model = await l.loadModel({ modelPath: path });
  const ctx = await model.createContext({ contextSize: 512, threads: 1, batchSize: 512 });
  const seq = ctx.getSequence();
  const ids: number[] = [];
  for await (const t of seq.evaluate([1], { temperature: 0 })) { ids.push(t); if (ids.length >= n) break; }
  const once = model.tokenize("Once upon a time") as number[];
  await ctx.dispose();
  await model.dispose();
  return { ids, once };
}

/** Our engine's greedy continuation from BOS on a GGUF file (TS: f32 activations; native: int8 activations). */
function ourGreedyFromBos(path: string, n: number, backend: Backend): number[] {
  const g = openGgufModel(path);
  // TS: blocks dequantized to f32 by the source; native: blocks as stored, through its int8-activation kernels
  const blocks = backend === tsBackend ? undefined : ggufProjection(g);
  const model = XverseModel.fromSource(parseConfig(g.config, path), g.source, { kvType: "f32", backend, projection: blocks, stored: blocks });
  return ourGreedy(model, n);
}

const prefix = (a: number[], b: number[]) => { let i = 0; while (i < a.length && a[i] === b[i]) i++; return i; };

test("llama.cpp runs our stories260K GGUF: f32 and f16 give the golden 255 greedy tokens; q8_0 / q4_0 stated", async () => {
  const matched: Record<string, number> = {}, agree: Record<string, number> = {};
  for (const [type, arch] of [["f32", "xverse"], ["f32", "llama"], ["f16", "xverse"], ["q8_0", "xverse"], ["q4_0", "xverse"]] as [ExportType, "xverse" | "llama"][]) {
    const path = join(dir, `stories-${type}-${arch}.gguf`);
    exportGguf(openCheckpoint(stories), loadConfig(stories), join(stories, "tokenizer.json"), path, { type, arch });
    const { ids, once } = await greedyFromBos(path, 255);
    matched[arch === "xverse" ? type : `${type}-${arch}`] = prefix(ids, golden.bos.greedy);
    if (type === "q8_0" || type === "q4_0") {
      agree[type] = prefix(ids, ourGreedyFromBos(path, 255, tsBackend));
      if (native) agree[`${type}-native`] = prefix(ids, ourGreedyFromBos(path, 255, native));
    }
    // llama.cpp's SPM tokenizer on our vocabulary (scores from merge ranks) = HF's BPE (golden prompt after BOS)
    assert.deepEqual(once, golden.once.prompt.slice(1), "tokenization of 'Once upon a time'");
  }
  console.log(`# llama.cpp greedy tokens matching golden: ${JSON.stringify(matched)}`);
  assert.equal(matched.f32, 255);
  assert.equal(matched["f32-llama"], 255);
  assert.equal(matched.f16, 255);
  // Quantized weights (and llama.cpp's Q8_0 activations in its Q8_0 matmul) change a 260K-parameter model's
  // choices eventually; with this pinned build Q8_0 keeps 114 tokens (185 on an Intel Xeon) and Q4_0 27.
  assert.ok(matched.q8_0 >= 100, `q8_0 kept ${matched.q8_0}`);
  assert.ok(matched.q4_0 >= 20, `q4_0 kept ${matched.q4_0}`);
  // On the same quantized file, our engine (blocks dequantized to f32; TS: f32 activations, native: int8) and
  // llama.cpp choose the same tokens for a long stretch. How long depends on which kernels llama.cpp picks for the
  // CPU: on AMD Zen 3 / Zen 4 its Q8_0 text equals our f32 path for all 255 tokens (our int8 path: 114); on an
  // Intel Xeon (AVX-512) it quantizes activations as our native kernels do and follows them for 247 (f32 path:
  // 114). Q4_0: 78-154. The better of our two paths is held to it; a wrong block decoder parts within a few tokens.
  console.log(`# llama.cpp vs our engine on the same file, common greedy prefix: ${JSON.stringify(agree)}`);
  const best = (t: string) => Math.max(agree[t], agree[`${t}-native`] ?? 0);
  assert.ok(best("q8_0") >= 240, `q8_0 agreed on ${JSON.stringify(agree)}`);
  assert.ok(best("q4_0") >= 110, `q4_0 agreed on ${JSON.stringify(agree)}`);
});

test("our reader agrees with node-llama-cpp's GGUF parser on llama.cpp's vocab files", async () => {
  const { readGgufFileInfo } = await importPeer("node-llama-cpp");
  const vdir = fixture("llama.cpp-vocab-tests");
  const get = (o: any, key: string) => key.split(".").reduce((x, k) => (x == null ? x : x[k]), o);
  // four of the eleven keep the test fast: SPM with scores, a chat template, BPE merges, another BPE
  for (const f of ["ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf", "ggml-vocab-gpt-2.gguf", "ggml-vocab-falcon.gguf"]) {
    const ours = readGguf(join(vdir, f));
    const theirs = await readGgufFileInfo(join(vdir, f), { logWarnings: false });
    assert.equal(ours.version, theirs.version, f);
    for (const [k, v] of Object.entries(ours.metadata)) {
      const t = get(theirs.metadata, k);
      if (Array.isArray(v)) {
        assert.equal((t as unknown[]).length, v.length, `${f} ${k}`);
        assert.deepEqual(Array.from(t as ArrayLike<unknown>), v, `${f} ${k}`);
      } else assert.deepEqual(t, typeof v === "number" && typeof t === "bigint" ? BigInt(v) : v, `${f} ${k}`);
    }
  }
});
