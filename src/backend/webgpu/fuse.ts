/**
 * Weight fusion for the forward: gate and up as one [gate; up] weight (2·intermediate rows), so the SwiGLU block
 * is one matmul + one SiLU·mul over its halves instead of two matmuls + one. Only when both are stored alike
 * (same format, shape, group size, zero points or none; no act-order permutation) and the pair fits one weight
 * part; otherwise the forward keeps two matmuls. The concatenated bytes live only until they are uploaded.
 */
import type { Weight } from "../backend.js";
import type { GpuContext } from "./context.js";
import { gpuWeight, rowBytes } from "./weights.js";

type Typed = Float32Array | Uint16Array | Int8Array | Uint8Array;

function concat<T extends Typed>(a: T, an: number, b: T, bn: number): T {
  const out = new (a.constructor as new (n: number) => T)(an + bn);
  out.set(a.subarray(0, an));
  out.set(b.subarray(0, bn), an);
  return out;
}

/** The fused [a; b] weight, uploaded (its handle set, its CPU data dropped), or null when a and b differ. */
export function fuseRows(ctx: GpuContext, a: Weight, b: Weight): Weight | null {
  if (a.format !== b.format || a.cols !== b.cols || a.rows !== b.rows || a.groupSize !== b.groupSize) return null;
  if (a.perm || b.perm || !a.mins !== !b.mins || !a.scales !== !b.scales) return null;
  let rb: number;
  try { rb = rowBytes(a); } catch { return null; }
  if (!rb || 2 * a.rows * rb > ctx.maxPartBytes) return null;
  const n = (a.rows * rb) / a.data.BYTES_PER_ELEMENT;
  const perScale = a.scales ? a.scales.length / a.rows : 0; // scales per row (1, or cols / groupSize)
  const fused: Weight = {
    format: a.format, rows: 2 * a.rows, cols: a.cols, groupSize: a.groupSize,
    data: concat(a.data, n, b.data, n),
    scales: a.scales && b.scales ? concat(a.scales, a.rows * perScale, b.scales, a.rows * perScale) : undefined,
    mins: a.mins && b.mins ? concat(a.mins, a.rows * perScale, b.mins, a.rows * perScale) : undefined,
  };
  gpuWeight(ctx, fused);
  // the GPU holds it now; the kernels read only the handle
  fused.data = new Uint8Array(0);
  fused.scales = fused.scales && new Float32Array(0);
  fused.mins = fused.mins && new Float32Array(0);
  return fused;
}
