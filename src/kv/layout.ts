/**
 * How keys and values are stored: the storage type and the byte layout of one block. Shared by the pool (which
 * allocates blocks), the TS reference kernels (kv/codec.ts, backend/ts/attention.ts) and the native addon, which
 * receives these numbers and computes the same addresses.
 *
 * A block holds `blockSize` consecutive tokens of one sequence for every layer:
 *   block = [layer 0: K region, V region][layer 1: K, V] … , each region head-major:
 *   f32 / f16: values (nKvHeads, blockSize, headDim) as f32 / IEEE half bits
 *   q8_0:      values (nKvHeads, blockSize, headDim) int8, then scales (nKvHeads, blockSize, headDim / group) f16;
 *              value = q · scale, one scale per `group` consecutive values of one head's row (group 32 as
 *              llama.cpp's Q8_0, or the whole head when headDim is not a multiple of 32).
 * Head-major regions keep one head's keys of a block contiguous (blockSize · headDim values), so attention streams
 * them without striding over the other heads. Regions are padded to 64 bytes (cache lines, aligned SIMD loads).
 */
import type { KvLayout, KvType } from "../backend/backend.js";
import { XverseError } from "../errors.js";

export type { KvLayout, KvType } from "../backend/backend.js";
export const KV_TYPES: readonly KvType[] = ["f32", "f16", "q8_0"];

export function parseKvType(s: string, where = "--kv-type"): KvType {
  if ((KV_TYPES as readonly string[]).includes(s)) return s as KvType;
  throw new XverseError("bad_argument", `${where}: '${s}' is not a KV cache type (use ${KV_TYPES.join(", ")})`);
}

/** Bytes per stored element: 4, 2, or 1 + 2/group for q8_0 (1.0625 at group 32). */
export function kvBytesPerElement(type: KvType, headDim: number): number {
  if (type === "f32") return 4;
  if (type === "f16") return 2;
  return 1 + 2 / q8Group(headDim);
}

function q8Group(headDim: number): number {
  return headDim % 32 === 0 ? 32 : headDim;
}

const pad64 = (n: number): number => Math.ceil(n / 64) * 64;

export function kvLayout(type: KvType, nLayers: number, nKvHeads: number, headDim: number, blockSize: number): KvLayout {
  if (!(Number.isInteger(blockSize) && blockSize >= 1 && blockSize <= 4096)) {
    throw new XverseError("bad_argument", `KV block size must be an integer in 1 … 4096 (got ${blockSize})`);
  }
  const n = nKvHeads * blockSize * headDim; // values per region
  let regionBytes: number, scaleOffset = 0, group = 0;
  if (type === "f32") regionBytes = pad64(n * 4);
  else if (type === "f16") regionBytes = pad64(n * 2);
  else {
    group = q8Group(headDim);
    scaleOffset = pad64(n);
    regionBytes = pad64(scaleOffset + (n / group) * 2);
  }
  const bytesPerToken = 2 * nLayers * nKvHeads * headDim * kvBytesPerElement(type, headDim);
  return Object.freeze({ type, nLayers, nKvHeads, headDim, blockSize, group, regionBytes, scaleOffset, blockBytes: 2 * nLayers * regionBytes, bytesPerToken });
}

/** Human-readable size: 1.6 MB, 820 KB. */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} KB`;
  return `${n} B`;
}
