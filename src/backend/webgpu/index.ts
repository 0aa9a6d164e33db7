/**
 * createWebGpuBackend(gpu): the Backend on WebGPU. Browser-safe (give it navigator.gpu); in Node use
 * createNodeWebGpuBackend() from node.ts's GPU. The model runs a whole forward on the GPU through `device`
 * (forward.ts); the synchronous per-kernel methods are not available (readback is asynchronous), except
 * embedRow, which decodes on the CPU. `kernels` runs single kernels asynchronously (parity tests).
 */
/// <reference types="@webgpu/types" />
import type { Backend, Weight } from "../backend.js";
import { XverseError } from "../../errors.js";
import { isBlockFormat, checkBlockWeight } from "../ts/blocks.js";
import { embedRowRef } from "../ts/index.js";
import { GpuContext, type AdapterSummary, type WebGpuOptions } from "./context.js";
import { WebGpuKernels } from "./kernels.js";
import { WebGpuForward } from "./forward.js";
import "./blocks/index.js";

export type { WebGpuOptions, AdapterSummary } from "./context.js";
export { WebGpuKernels } from "./kernels.js";
export { registerFormatKernel, formatKernel, type FormatKernel } from "./registry.js";

export interface WebGpuBackend extends Backend {
  readonly device: WebGpuForward;
  readonly kernels: WebGpuKernels;
  readonly ctx: GpuContext;
  readonly adapter: AdapterSummary;
  /** Frees the device (weights uploaded to it become invalid). */
  destroy(): void;
}

function syncUnsupported(op: string): never {
  throw new XverseError("unsupported", `the webgpu backend runs whole forwards on the GPU (model.forwardAsync / forwardBatchAsync); the synchronous ${op}() kernel is not available on it`);
}

export async function createWebGpuBackend(gpu: GPU, opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  const ctx = await GpuContext.create(gpu, opts);
  const kernels = new WebGpuKernels(ctx);
  const device = new WebGpuForward(kernels);
  const uses = [ctx.hasF16 && (ctx.f16Math ? "shader-f16" : "shader-f16 reads"), ctx.hasSubgroups && "subgroups", `${ctx.style} kernels`].filter(Boolean);
  return {
    name: "webgpu",
    label: `webgpu on ${ctx.adapter.name} (${uses.join(", ")})`,
    device,
    kernels,
    ctx,
    adapter: ctx.adapter,
    destroy: () => ctx.destroy(),
    prepareWeight(w: Weight): Weight {
      if (isBlockFormat(w.format)) checkBlockWeight(w);
      return w; // uploaded on first use: the embedding table is only ever read on the CPU
    },
    embedRow(out: Float32Array, w: Weight, row: number): void {
      embedRowRef(out, w, row);
    },
    matmul: () => syncUnsupported("matmul"),
    rmsnorm: () => syncUnsupported("rmsnorm"),
    rope: () => syncUnsupported("rope"),
    kvWrite: () => syncUnsupported("kvWrite"),
    attention: () => syncUnsupported("attention"),
    siluMul: () => syncUnsupported("siluMul"),
    addInPlace: () => syncUnsupported("addInPlace"),
  };
}
