/**
 * WebGPU in Node: the optional `webgpu` package (Dawn). The only file that imports it, so the rest of
 * backend/webgpu/ bundles for browsers. On a machine without a GPU driver, Dawn can run on SwiftShader (a CPU
 * Vulkan driver that ships with Chromium): set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json.
 */
/// <reference types="@webgpu/types" />
import { XverseError } from "../../errors.js";
import { createWebGpuBackend, type WebGpuBackend, type WebGpuOptions } from "./index.js";

let cached: Promise<GPU> | null = null;

/** navigator.gpu's Node twin; throws a clear error when the optional dependency is not installed. */
export function nodeGpu(): Promise<GPU> {
  cached ??= (async () => {
    let mod: { create(args: string[]): GPU; globals: Record<string, unknown> };
    try {
      mod = (await import("webgpu" as string)) as typeof mod;
    } catch (e) {
      throw new XverseError("webgpu_unavailable", `--backend webgpu needs the optional dependency \`webgpu\` (Dawn for Node): install it with \`npm install webgpu\` (${(e as Error).message})`);
    }
    // GPUBufferUsage, GPUMapMode … as globals, as in a browser
    for (const [k, v] of Object.entries(mod.globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    return mod.create([]);
  })();
  cached.catch(() => { cached = null; });
  return cached;
}

/** Where Debian's Chromium puts SwiftShader's Vulkan driver (tests point VK_ICD_FILENAMES at it when unset). */
export const SWIFTSHADER_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json";

/** The WebGPU backend on Node's GPU. */
export async function createNodeWebGpuBackend(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  return createWebGpuBackend(await nodeGpu(), opts);
}
