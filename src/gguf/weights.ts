/**
 * Running GGUF weights quantized instead of dequantizing them: Q4_0 blocks are exactly our `q4_group` format
 * with groupSize 32 (w = (q − 8)·d with a 4-bit q and an f16 d per 32 columns), so a Q4_0 projection is
 * repacked losslessly and runs on the int4 kernels. Other types return null and load as floats.
 */
import type { Weight } from "../backend/backend.js";
import { XverseError } from "../errors.js";
import type { TensorSource } from "../io/source.js";
import type { GgufModel } from "../io/gguf-model.js";
import { readGgufTensorBytes } from "../io/gguf.js";
import { permuteRopeRows, ropeRole } from "./names.js";
import { GGML } from "./types.js";
import { f16ToF32 } from "../tensor.js";

/**
 * Q4_0 row bytes (per 32 columns: f16 d, then 16 bytes with column j in the low nibble of byte j and column
 * j+16 in the high nibble) → q4_group data (column 2k in the low nibble of byte k, two's complement) + scales.
 */
export function q4_0ToGroupWeight(bytes: Uint8Array, rows: number, cols: number): Weight {
  if (cols % 32 !== 0) throw new Error(`q4_0ToGroupWeight: ${cols} columns are not a multiple of 32`);
  const nb = (rows * cols) / 32;
  const data = new Uint8Array((rows * cols) / 2);
  const scales = new Float32Array(nb);
  for (let b = 0; b < nb; b++) {
    const o = b * 18;
    scales[b] = f16ToF32(bytes[o] | (bytes[o + 1] << 8));
    const dst = b * 16; // 32 columns = 16 bytes, and blocks never straddle rows
    // (q − 8) as a two's-complement nibble is q ^ 8
    for (let k = 0; k < 8; k++) {
      const a = bytes[o + 2 + 2 * k], c = bytes[o + 2 + 2 * k + 1];
      data[dst + k] = ((a & 15) ^ 8) | (((c & 15) ^ 8) << 4); // columns 2k, 2k+1 (low nibbles)
      data[dst + 8 + k] = ((a >> 4) ^ 8) | (((c >> 4) ^ 8) << 4); // columns 16+2k, 16+2k+1 (high nibbles)
    }
  }
  return { format: "q4_group", rows, cols, data, scales, groupSize: 32 };
}

/**
 * A projection hook for loadWeights (WeightLoadOptions.projection): Q4_0 projections become q4_group weights
 * (q/k rows un-permuted like the float path), everything else returns null and takes the float path.
 */
export function ggufProjection(g: GgufModel): (name: string, source: TensorSource, rows: number, cols: number) => Weight | null {
  const heads = g.config.num_attention_heads as number;
  const kvHeads = g.config.num_key_value_heads as number;
  return (name, _source, rows, cols) => {
    const found = g.tensorFor(name);
    if (!found || found.info.type !== GGML.Q4_0) return null;
    const t = found.info;
    if (t.shape[0] !== rows || t.shape[1] !== cols) {
      throw new XverseError("bad_checkpoint", `${found.file.path}: tensor "${t.name}" has shape [${t.shape}], expected [${rows}, ${cols}] from its metadata`);
    }
    const w = q4_0ToGroupWeight(readGgufTensorBytes(found.file, t), rows, cols);
    const role = ropeRole(name);
    if (role) {
      const n = role === "q" ? heads : kvHeads;
      w.data = permuteRopeRows(w.data as Uint8Array, n, cols / 2, false);
      w.scales = permuteRopeRows(w.scales!, n, cols / 32, false);
    }
    return w;
  };
}
