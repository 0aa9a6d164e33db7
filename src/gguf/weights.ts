/**
 * Running GGUF weights quantized instead of dequantizing them: every block type runs as stored (the backend's
 * block formats). Q4_0 blocks are also exactly our `q4_group` format with groupSize 32 (w = (q − 8)·d with a
 * 4-bit q and an f16 d per 32 columns): on AVX-512 VNNI / AMX the native backend repacks them at prepareWeight
 * (its int4 kernels run faster there than the Q4_0 block kernel; NativeBackend.repacksQ4_0);
 * backend/ts/blocks.ts's q4_0ToGroupWeight is that repack's TS statement.
 */
import type { Weight } from "../backend/backend.js";
import type { TensorSource } from "../io/source.js";
import type { GgufModel } from "../io/gguf-model.js";
import { readGgufTensorBytes, releaseGgufTensor } from "../io/gguf.js";
import { ggufBlockProjection } from "./block-weights.js";

export { ggufBlockFormat, ggufBlockProjection, type GgufBlockTensor } from "./block-weights.js";

/**
 * A projection hook for loadWeights (WeightLoadOptions.projection, and .stored for token_embd / output) over an
 * opened GGUF model: every tensor of a GGUF block type becomes a Weight of that format over the file's bytes (a
 * view into the mapping, no copy). q / k rows are un-permuted from GGUF's interleaved-RoPE order as whole rows of
 * blocks (bytes copied, never widened; the mapped pages are then released). F32 / F16 / BF16 return null: the
 * float path. (The file-system-free core, shared with the browser loader, is block-weights.ts.)
 */
export function ggufProjection(g: GgufModel): (name: string, source: TensorSource, rows: number, cols: number) => Weight | null {
  const heads = g.config.num_attention_heads as number;
  const kvHeads = g.config.num_key_value_heads as number;
  return ggufBlockProjection((name) => {
    const found = g.tensorFor(name);
    if (!found) return undefined;
    const { file, info } = found;
    return {
      info, where: `${file.path}: tensor "${info.name}"`,
      bytes: () => readGgufTensorBytes(file, info),
      release: () => releaseGgufTensor(file, info),
    };
  }, heads, kvHeads);
}
