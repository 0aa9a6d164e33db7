// The WebGPU test device: Dawn (the optional `webgpu` package) on whatever Vulkan driver is present; on a
// machine without a GPU, SwiftShader from Debian's chromium package (VK_ICD_FILENAMES is set here when unset).
// No adapter is a failure with a clear message, not a skip: CI installs chromium + libvulkan1 (.ci/run).
import { existsSync } from "node:fs";
import { createNodeWebGpuBackend, SWIFTSHADER_ICD } from "../../src/backend/webgpu/node.js";
import type { WebGpuBackend, WebGpuOptions } from "../../src/backend/webgpu/index.js";

if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;

const cache = new Map<string, Promise<WebGpuBackend>>();

/** One backend per option set for the whole test process (device creation costs ~0.1 s). */
export function gpuBackend(opts: WebGpuOptions = {}): Promise<WebGpuBackend> {
  // f32 products unless a test asks: the parity bounds here are f32's (f16.test.ts checks the f16 products)
  opts = { f16: false, ...opts };
  const key = JSON.stringify(opts);
  let b = cache.get(key);
  if (!b) {
    b = createNodeWebGpuBackend(opts).catch((e: Error) => {
      throw new Error(`WebGPU tests need a WebGPU adapter: install the optional npm dependency webgpu, and libvulkan1 + chromium (SwiftShader, ${SWIFTSHADER_ICD}) or a GPU driver. Cause: ${e.message}`);
    });
    cache.set(key, b);
  }
  return b;
}
