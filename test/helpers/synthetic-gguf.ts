/**
 * A synthetic XVERSE model written straight to a GGUF file (F16 projections and embeddings, F32 norms), of any
 * size, with the tokenizer of a real small GGUF — for load tests that need hundreds of MB without a download.
 * Weights are random f16 bit patterns of magnitude < 0.06 (a cheap xorshift, not the test RNG: 150M values), or
 * random Q4_0 blocks (scale < 2^-8, so |w| < 0.035).
 */
import { GGML } from "../../src/gguf/types.js";
import { writeGguf, type GgufWriteTensor } from "../../src/gguf/writer.js";
import type { GgufFile } from "../../src/io/gguf.js";

export interface SyntheticShape {
  hidden: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  layers: number;
}

/** Random f16 values: sign, exponent 8…11 (2^-7 … 2^-4), random mantissa. */
function randomF16(n: number, seed: number): Uint8Array {
  const out = new Uint16Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = (s & 0x8000) | ((8 + ((s >>> 10) & 3)) << 10) | (s & 0x3ff);
  }
  return new Uint8Array(out.buffer);
}

/**
 * Writes the model (F16 or Q4_0 matrices); `vocabFrom` supplies the tokenizer.ggml.* metadata (and so the vocabulary size). Returns the
 * bytes of tensor data written.
 */
export function writeSyntheticGguf(path: string, shape: SyntheticShape, vocabFrom: GgufFile, seed = 1, type: "f16" | "q4_0" = "f16"): number {
  const vocab = (vocabFrom.metadata["tokenizer.ggml.tokens"] as string[]).length;
  const { hidden: h, heads, kvHeads, intermediate: f, layers } = shape;
  const hd = h / heads;
  const metadata: Record<string, unknown> = {}, types: Record<string, string> = {};
  for (const [k, v] of Object.entries(vocabFrom.metadata)) {
    if (!k.startsWith("tokenizer.")) continue;
    metadata[k] = v;
    types[k] = vocabFrom.metadataTypes[k];
  }
  Object.assign(metadata, {
    "general.architecture": "xverse", "general.name": "synthetic",
    "xverse.context_length": 256, "xverse.embedding_length": h, "xverse.block_count": layers,
    "xverse.feed_forward_length": f, "xverse.attention.head_count": heads, "xverse.attention.head_count_kv": kvHeads,
    "xverse.attention.layer_norm_rms_epsilon": 1e-6, "xverse.rope.freq_base": 10000, "xverse.vocab_size": vocab,
  });
  types["xverse.attention.layer_norm_rms_epsilon"] = "FLOAT32";
  types["xverse.rope.freq_base"] = "FLOAT32";
  let n = 0;
  const tensors: GgufWriteTensor[] = [];
  const mat = (name: string, rows: number, cols: number) => {
    const id = tensors.length + seed * 1000;
    if (type === "q4_0") {
      // random blocks: an f16 scale d in [2^-9, 2^-8) (positive: clear the sign bit) and 32 random nibbles
      const q4 = () => {
        const nb = (rows * cols) / 32, out = randomF16((nb * 18) / 2, id), dv = new DataView(out.buffer);
        for (let b = 0; b < nb; b++) dv.setUint16(b * 18, (6 << 10) | (dv.getUint16(b * 18, true) & 0x3ff), true);
        return out;
      };
      tensors.push({ name, type: GGML.Q4_0, shape: [rows, cols], data: q4 });
      n += (rows * cols / 32) * 18;
      return;
    }
    tensors.push({ name, type: GGML.F16, shape: [rows, cols], data: () => randomF16(rows * cols, id) });
    n += rows * cols * 2;
  };
  const norm = (name: string) => {
    tensors.push({ name, type: GGML.F32, shape: [h], data: () => new Uint8Array(new Float32Array(h).fill(1).buffer) });
    n += h * 4;
  };
  mat("token_embd.weight", vocab, h);
  for (let l = 0; l < layers; l++) {
    norm(`blk.${l}.attn_norm.weight`);
    mat(`blk.${l}.attn_q.weight`, heads * hd, h);
    mat(`blk.${l}.attn_k.weight`, kvHeads * hd, h);
    mat(`blk.${l}.attn_v.weight`, kvHeads * hd, h);
    mat(`blk.${l}.attn_output.weight`, h, heads * hd);
    norm(`blk.${l}.ffn_norm.weight`);
    mat(`blk.${l}.ffn_gate.weight`, f, h);
    mat(`blk.${l}.ffn_up.weight`, f, h);
    mat(`blk.${l}.ffn_down.weight`, h, f);
  }
  norm("output_norm.weight");
  mat("output.weight", vocab, h);
  writeGguf(path, { metadata, types, tensors });
  return n;
}
