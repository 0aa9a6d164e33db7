/**
 * Tensor names between Hugging Face checkpoints and llama.cpp GGUF files (the `llama` / `xverse` layouts),
 * and the q/k row permutation between HF rotate-half RoPE and llama.cpp's adjacent-pair RoPE.
 */
import type { TensorData } from "../tensor.js";

const LAYER_MAP: ReadonlyArray<[string, string]> = [
  ["input_layernorm.weight", "attn_norm.weight"],
  ["self_attn.q_proj.weight", "attn_q.weight"],
  ["self_attn.k_proj.weight", "attn_k.weight"],
  ["self_attn.v_proj.weight", "attn_v.weight"],
  ["self_attn.o_proj.weight", "attn_output.weight"],
  ["post_attention_layernorm.weight", "ffn_norm.weight"],
  ["mlp.gate_proj.weight", "ffn_gate.weight"],
  ["mlp.up_proj.weight", "ffn_up.weight"],
  ["mlp.down_proj.weight", "ffn_down.weight"],
];
const GLOBAL_MAP: ReadonlyArray<[string, string]> = [
  ["model.embed_tokens.weight", "token_embd.weight"],
  ["model.norm.weight", "output_norm.weight"],
  ["lm_head.weight", "output.weight"],
];

/** HF name → GGUF name, or null for names GGUF has no slot for (e.g. rotary_emb.inv_freq). */
export function hfToGguf(name: string): string | null {
  for (const [hf, gg] of GLOBAL_MAP) if (name === hf) return gg;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (m) for (const [hf, gg] of LAYER_MAP) if (m[2] === hf) return `blk.${m[1]}.${gg}`;
  return null;
}

/** GGUF name → HF name, or null when unknown. */
export function ggufToHf(name: string): string | null {
  for (const [hf, gg] of GLOBAL_MAP) if (name === gg) return hf;
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  if (m) for (const [hf, gg] of LAYER_MAP) if (m[2] === gg) return `model.layers.${m[1]}.${hf}`;
  return null;
}

/** Which projection needs the RoPE row permutation: "q", "k" or null. */
export function ropeRole(hfName: string): "q" | "k" | null {
  if (hfName.endsWith("self_attn.q_proj.weight")) return "q";
  if (hfName.endsWith("self_attn.k_proj.weight")) return "k";
  return null;
}

/**
 * Permutes the rows of a (nHeads·headDim, cols) matrix between the two RoPE layouts. Within each head, HF
 * rotate-half row  half·(headDim/2) + i  ⇄  llama.cpp adjacent-pair row  2i + half  (convert_hf_to_gguf's
 * reshape(n_head, 2, hd/2, …).swapaxes(1, 2)).
 *   toGguf = true:  HF → GGUF (what a converter does);  false: GGUF → HF (undo it on load).
 * Rows are whole, so the same works for any element type, including raw quantized row bytes (cols = bytes/row).
 */
export function permuteRopeRows<T extends TensorData>(w: T, nHeads: number, cols: number, toGguf: boolean): T {
  const rows = w.length / cols;
  if (!Number.isInteger(rows) || rows % nHeads !== 0 || (rows / nHeads) % 2 !== 0) {
    throw new Error(`permuteRopeRows: ${rows} rows do not split into ${nHeads} heads of even size`);
  }
  const hd = rows / nHeads, half = hd / 2;
  // bytes go to a plain Uint8Array: a mapped GGUF's bytes are a Buffer, whose constructor is the deprecated
  // `new Buffer(n)` (warning DEP0005)
  const out = (w instanceof Uint8Array ? new Uint8Array(w.length) : new (w.constructor as { new (n: number): T })(w.length)) as T;
  for (let hIdx = 0; hIdx < nHeads; hIdx++) {
    for (let s = 0; s < 2; s++) {
      for (let i = 0; i < half; i++) {
        const hfRow = hIdx * hd + s * half + i;
        const ggRow = hIdx * hd + 2 * i + s;
        const [src, dst] = toGguf ? [hfRow, ggRow] : [ggRow, hfRow];
        out.set(w.subarray(src * cols, (src + 1) * cols) as never, dst * cols);
      }
    }
  }
  return out;
}
