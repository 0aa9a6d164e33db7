/**
 * Weights on the GPU: a weight's stored bytes (never widened), uploaded once on first use and kept in
 * weight.handle. A matrix larger than one storage binding is split in row ranges ("parts", whole rows each);
 * kernels run once per part. Scales / mins / perm (the dense int formats) are small and stay whole.
 */
/// <reference types="@webgpu/types" />
import type { Weight } from "../backend.js";
import { XverseError } from "../../errors.js";
import { blockRowBytes, isBlockFormat } from "../ts/blocks.js";
import { formatKernel } from "./registry.js";
import type { GpuContext } from "./context.js";

export interface WeightPart {
  buffer: GPUBuffer;
  rowStart: number;
  rows: number;
}

export interface GpuWeight {
  readonly ctx: GpuContext;
  parts: WeightPart[];
  scales?: GPUBuffer;
  mins?: GPUBuffer;
  perm?: GPUBuffer;
}

/** Bytes of one stored row, or 0 when rows share bytes (int4 with odd cols: the weight cannot be split). */
export function rowBytes(w: Weight): number {
  switch (w.format) {
    case "f32": return 4 * w.cols;
    case "f16": case "bf16": return 2 * w.cols;
    case "q8_row": case "q8_group": return w.cols;
    case "q4_row": case "q4_group": return w.cols % 2 ? 0 : w.cols / 2;
    default:
      if (isBlockFormat(w.format)) return blockRowBytes(w.format, w.cols);
      throw new XverseError("unsupported", `WebGPU: weight format ${w.format} is not supported`);
  }
}

/** Fails early, with the format's name, when no kernel exists for it (block formats until blocks/ registers one). */
export function checkSupported(w: Weight): void {
  if (isBlockFormat(w.format) && !formatKernel(w.format)) {
    throw new XverseError("unsupported", `WebGPU: no kernel for ${w.format} weights yet (GGUF block type); run this model with --backend native or ts, or load a float / --quantize 4|8 checkpoint`);
  }
  rowBytes(w);
}

export function gpuWeight(ctx: GpuContext, w: Weight): GpuWeight {
  const h = w.handle as GpuWeight | undefined;
  if (h && h.ctx === ctx) return h;
  checkSupported(w);
  const rb = rowBytes(w);
  const data = new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength);
  const parts: WeightPart[] = [];
  const total = rb ? rb * w.rows : Math.ceil((w.rows * w.cols) / 2);
  if (data.byteLength < total) {
    throw new XverseError("bad_weight", `WebGPU: a ${w.format} [${w.rows}, ${w.cols}] weight needs ${total} bytes, its data has ${data.byteLength} (truncated, or released from the GPU already)`);
  }
  if (!rb || total <= ctx.maxPartBytes) {
    parts.push({ buffer: ctx.upload(data.subarray(0, total)), rowStart: 0, rows: w.rows });
  } else {
    const per = Math.floor(ctx.maxPartBytes / rb);
    if (per < 1) throw new XverseError("unsupported", `WebGPU: one row of this ${w.format} weight (${rb} bytes) is larger than a storage binding (${ctx.maxPartBytes} bytes)`);
    for (let r = 0; r < w.rows; r += per) {
      const n = Math.min(per, w.rows - r);
      parts.push({ buffer: ctx.upload(data.subarray(r * rb, (r + n) * rb)), rowStart: r, rows: n });
    }
  }
  if (!rb && total > ctx.maxPartBytes) {
    throw new XverseError("unsupported", `WebGPU: an int4 weight with an odd column count (${w.cols}) cannot be split, and it is larger than a storage binding`);
  }
  const g: GpuWeight = { ctx, parts };
  if (w.scales) g.scales = ctx.upload(w.scales);
  if (w.mins) g.mins = ctx.upload(w.mins);
  if (w.perm) g.perm = ctx.upload(w.perm);
  w.handle = g;
  return g;
}

export function releaseGpuWeight(w: Weight): void {
  const h = w.handle as GpuWeight | undefined;
  if (!h || !h.parts) return;
  for (const p of h.parts) p.buffer.destroy();
  h.scales?.destroy(); h.mins?.destroy(); h.perm?.destroy();
  w.handle = undefined;
}
