/**
 * Running GGUF weights quantized instead of dequantizing them: every block type runs as stored (the backend's
 * block formats). Q4_0 blocks are also exactly our `q4_group` format with groupSize 32 (w = (q − 8)·d with a
 * 4-bit q and an f16 d per 32 columns): the native backend repacks them at prepareWeight (its int4 kernels run
 * faster than its Q4_0 block kernel); backend/ts/blocks.ts's q4_0ToGroupWeight is that repack's TS statement.
 */
import type { Weight } from "../backend/backend.js";
import { XverseError } from "../errors.js";
import type { TensorSource } from "../io/source.js";
import type { GgufModel } from "../io/gguf-model.js";
import { readGgufTensorBytes, releaseGgufTensor } from "../io/gguf.js";
import { permuteRopeRows, ropeRole } from "./names.js";
import { GGML } from "./types.js";
import { blockRowBytes, type BlockFormat } from "../backend/ts/blocks.js";

/** GGUF block types that run as stored (backend/ts/blocks.ts), by ggml type id. */
const BLOCK_FORMAT_OF: ReadonlyMap<number, BlockFormat> = new Map<number, BlockFormat>([
  [GGML.Q4_0, "q4_0"], [GGML.Q4_1, "q4_1"], [GGML.Q5_0, "q5_0"], [GGML.Q5_1, "q5_1"], [GGML.Q8_0, "q8_0"],
  [GGML.Q2_K, "q2_k"], [GGML.Q3_K, "q3_k"], [GGML.Q4_K, "q4_k"], [GGML.Q5_K, "q5_k"], [GGML.Q6_K, "q6_k"],
]);

/**
 * A projection hook for loadWeights (WeightLoadOptions.projection, and .stored for token_embd / output): every
 * tensor of a GGUF block type becomes a Weight of that format over the file's bytes (a view, no copy). q / k rows
 * are un-permuted from GGUF's interleaved-RoPE order as whole rows of blocks (bytes copied, never widened).
 * F32 / F16 / BF16 return null: the float path.
 */
export function ggufProjection(g: GgufModel): (name: string, source: TensorSource, rows: number, cols: number) => Weight | null {
  const heads = g.config.num_attention_heads as number;
  const kvHeads = g.config.num_key_value_heads as number;
  return (name, _source, rows, cols) => {
    const found = g.tensorFor(name);
    const format = found && BLOCK_FORMAT_OF.get(found.info.type);
    if (!found || !format) return null;
    const t = found.info;
    const where = `${found.file.path}: tensor "${t.name}"`;
    if (t.shape[0] !== rows || t.shape[1] !== cols) {
      throw new XverseError("bad_checkpoint", `${where} has shape [${t.shape}], expected [${rows}, ${cols}] from its metadata`);
    }
    const role = ropeRole(name);
    const nRope = role === "q" ? heads : kvHeads;
    const rowBytes = blockRowBytes(format, cols, where);
    let data = readGgufTensorBytes(found.file, t);
    if (data.length < rows * rowBytes) {
      throw new XverseError("bad_checkpoint", `${where} holds ${data.length} bytes, a ${format} [${rows}, ${cols}] needs ${rows * rowBytes}; the file is truncated`);
    }
    data = data.subarray(0, rows * rowBytes);
    if (role) {
      data = permuteRopeRows(data, nRope, rowBytes, false);
      releaseGgufTensor(found.file, t); // re-ordered copy: the mapped file pages are not read again
    }
    return { format, rows, cols, data };
  };
}
