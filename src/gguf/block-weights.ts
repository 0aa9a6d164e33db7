/**
 * GGUF block tensors as backend Weights, without a file system: the core of gguf/weights.ts's ggufProjection,
 * shared with the browser loader (src/browser/load.ts), which has the tensors' bytes in memory instead of a
 * mapped file. Every tensor of a GGUF block type becomes a Weight of that format over its bytes (a view, no
 * copy); q / k rows are un-permuted from GGUF's interleaved-RoPE order as whole rows of blocks (bytes copied,
 * never widened). F32 / F16 / BF16 tensors give null: the float path.
 */
import type { Weight } from "../backend/backend.js";
import { XverseError } from "../errors.js";
import type { GgufTensorInfo } from "../io/gguf-parse.js";
import type { TensorSource } from "../io/source.js";
import { permuteRopeRows, ropeRole } from "./names.js";
import { GGML } from "./types.js";
import { blockRowBytes, type BlockFormat } from "../backend/ts/blocks.js";

/** GGUF block types that run as stored (backend/ts/blocks.ts), by ggml type id. */
const BLOCK_FORMAT_OF: ReadonlyMap<number, BlockFormat> = new Map<number, BlockFormat>([
  [GGML.Q4_0, "q4_0"], [GGML.Q4_1, "q4_1"], [GGML.Q5_0, "q5_0"], [GGML.Q5_1, "q5_1"], [GGML.Q8_0, "q8_0"],
  [GGML.Q2_K, "q2_k"], [GGML.Q3_K, "q3_k"], [GGML.Q4_K, "q4_k"], [GGML.Q5_K, "q5_k"], [GGML.Q6_K, "q6_k"],
]);

/** The backend block format a ggml type runs as, or undefined (float types, and types we do not run as stored). */
export function ggufBlockFormat(type: number): BlockFormat | undefined {
  return BLOCK_FORMAT_OF.get(type);
}

/** One GGUF tensor behind a Hugging Face name, as the projection hook needs it. */
export interface GgufBlockTensor {
  info: GgufTensorInfo;
  /** For messages: `<file>: tensor "<gguf name>"`. */
  where: string;
  /** The tensor's stored bytes (read only when the tensor is of a block type). */
  bytes(): Uint8Array;
  /** Called after q / k rows were re-ordered into a copy: the stored bytes are not read again. */
  release?(): void;
}

/**
 * A projection hook for loadWeights (WeightLoadOptions.projection, and .stored for token_embd / output) over
 * `lookup`, which finds the GGUF tensor behind an HF name. `heads` / `kvHeads` un-permute q / k rows.
 */
export function ggufBlockProjection(
  lookup: (hfName: string) => GgufBlockTensor | undefined, heads: number, kvHeads: number,
): (name: string, source: TensorSource, rows: number, cols: number) => Weight | null {
  return (name, _source, rows, cols) => {
    const found = lookup(name);
    const format = found && BLOCK_FORMAT_OF.get(found.info.type);
    if (!found || !format) return null;
    const t = found.info;
    const where = found.where;
    if (t.shape[0] !== rows || t.shape[1] !== cols) {
      throw new XverseError("bad_checkpoint", `${where} has shape [${t.shape}], expected [${rows}, ${cols}] from its metadata`);
    }
    const role = ropeRole(name);
    const nRope = role === "q" ? heads : kvHeads;
    const rowBytes = blockRowBytes(format, cols, where);
    let data = found.bytes();
    if (data.length < rows * rowBytes) {
      throw new XverseError("bad_checkpoint", `${where} holds ${data.length} bytes, a ${format} [${rows}, ${cols}] needs ${rows * rowBytes}; the file is truncated`);
    }
    data = data.subarray(0, rows * rowBytes);
    if (role) {
      data = permuteRopeRows(data, nRope, rowBytes, false);
      found.release?.(); // re-ordered copy: the stored bytes are not read again
    }
    return { format, rows, cols, data };
  };
}
