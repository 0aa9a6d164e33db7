/**
 * GGUF block-format kernels: importing this module registers a matmul and an embed kernel for every block type
 * (q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k) with ../registry.ts. The kernels read the file's ggml
 * blocks as stored (raw bytes in u32 words), dequantize to f32 and multiply in f32, so they match the TS spec
 * (src/backend/ts/blocks.ts + matmulRef) up to f32 summation order. README.md has the layout and the numbers.
 */
import { BLOCK_GEOMETRY, type BlockFormat } from "../../ts/blocks.js";
import { registerFormatKernel, splitGrid, type FormatKernel } from "../registry.js";
import { embedWgsl, matmulWgsl, TT, WG } from "./shaders.js";
import { NT, RT } from "./tiled.js";

export { embedWgsl, matmulWgsl, TT, WG } from "./shaders.js";
export { NT, RT } from "./tiled.js";

export const BLOCK_FORMATS = Object.keys(BLOCK_GEOMETRY) as BlockFormat[];

/** The registered kernel of one block format (WGSL built once per format, on first use). */
export function blockKernel(format: BlockFormat): FormatKernel {
  let mm: string | undefined, em: string | undefined;
  return {
    get wgsl() { return (mm ??= matmulWgsl(format)); },
    entryPoint: "main",
    workgroups(rows: number, T: number): [number, number, number] {
      // must match the branch in the kernel: T > TT → tiles of RT rows × NT tokens, else rows × TT tokens
      if (T > TT) {
        const [gx, gy] = splitGrid(Math.ceil(rows / RT));
        return [gx, gy, Math.ceil(T / NT)];
      }
      const [gx, gy] = splitGrid(rows);
      return [gx, gy, Math.ceil(T / TT)];
    },
    embed: {
      get wgsl() { return (em ??= embedWgsl(format)); },
      entryPoint: "main",
      workgroups(cols: number): [number, number, number] {
        return [Math.max(1, Math.ceil(cols / 32 / WG)), 1, 1];
      },
    },
  };
}

for (const f of BLOCK_FORMATS) registerFormatKernel(f, blockKernel(f));
