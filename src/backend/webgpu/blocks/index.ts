/**
 * GGUF block-format kernels: importing this module registers a matmul and an embed kernel for every block type
 * (q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k) with ../registry.ts. The kernels read the file's ggml
 * blocks as stored (raw bytes in u32 words), dequantize to f32 and multiply in f32, so they match the TS spec
 * (src/backend/ts/blocks.ts + matmulRef) up to f32 summation order — except the tiled prefill on a device with
 * shader-f16, which multiplies in f16 (tiled.ts; WebGpuOptions.f16). README.md has the layout and the numbers.
 */
import { BLOCK_GEOMETRY, type BlockFormat } from "../../ts/blocks.js";
import { registerFormatKernel, splitGrid, type FormatKernel } from "../registry.js";
import { embedWgsl, matmulWgsl, TT, WG } from "./shaders.js";
import { NT, prefillWgsl, RT } from "./tiled.js";

export { embedWgsl, matmulWgsl, TT, WG, type MatmulVariant } from "./shaders.js";
export { NT, prefillWgsl, RT } from "./tiled.js";

export const BLOCK_FORMATS = Object.keys(BLOCK_GEOMETRY) as BlockFormat[];

type VariantFn = NonNullable<FormatKernel["variant"]>;
/** What a device and a call select (the core passes ctx.hasSubgroups, ctx.style and T). */
export type BlockVariant = Parameters<VariantFn>[0];
/** One concrete matmul kernel: `key` names its pipeline (the WGSL differs per key). */
export type BlockMatmulKernel = ReturnType<VariantFn>;

/**
 * A block format's kernels. variant(): the "thread" style (barrier-free, CPU drivers), the tiled prefill
 * kernel (workgroup style, T > TT), or the decode kernel (with subgroupAdd when available). The plain `wgsl` /
 * `workgroups` are the decode kernel with the shared-memory reduction (any device, any T).
 */
export interface BlockFormatKernel extends FormatKernel {
  variant: VariantFn;
}

const rowsGrid = (rows: number, T: number): [number, number, number] => {
  const [gx, gy] = splitGrid(rows);
  return [gx, gy, Math.ceil(T / TT)];
};

/** The registered kernel of one block format (each WGSL built once, on first use). */
export function blockKernel(format: BlockFormat): BlockFormatKernel {
  const cache = new Map<string, string>();
  const src = (key: string, make: () => string): string => {
    let s = cache.get(key);
    if (s === undefined) cache.set(key, (s = make()));
    return s;
  };
  const decode = (sg: boolean): BlockMatmulKernel => ({
    key: `${format}:decode:${+sg}`, get wgsl() { return src(`d${+sg}`, () => matmulWgsl(format, { subgroups: sg })); },
    entryPoint: "main", workgroups: rowsGrid,
  });
  const thread: BlockMatmulKernel = {
    key: `${format}:thread`, get wgsl() { return src("t", () => matmulWgsl(format, { style: "thread" })); },
    entryPoint: "main",
    // invocation i → row i mod rows, token tile ⌊i / rows⌋ (64 invocations per workgroup)
    workgroups: (rows, T) => [...splitGrid(Math.ceil((rows * Math.ceil(T / TT)) / 64)), 1] as [number, number, number],
  };
  const prefill = (f16: boolean): BlockMatmulKernel => ({
    key: `${format}:prefill:${+f16}`, get wgsl() { return src(`p${+f16}`, () => prefillWgsl(format, { f16 })); },
    entryPoint: "main",
    workgroups: (rows, T) => [...splitGrid(Math.ceil(rows / RT)), Math.ceil(T / NT)] as [number, number, number],
  });
  const plain = decode(false);
  return {
    get wgsl() { return plain.wgsl; },
    entryPoint: "main",
    workgroups: rowsGrid,
    variant(v: BlockVariant): BlockMatmulKernel {
      if (v.style === "thread") return thread;
      return v.T > TT ? prefill(v.f16) : decode(v.subgroups);
    },
    embed: {
      get wgsl() { return src("e", () => embedWgsl(format)); },
      entryPoint: "main",
      workgroups(cols: number): [number, number, number] {
        return [Math.max(1, Math.ceil(cols / 32 / WG)), 1, 1];
      },
    },
  };
}

for (const f of BLOCK_FORMATS) registerFormatKernel(f, blockKernel(f));
