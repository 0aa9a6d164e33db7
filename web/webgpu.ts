/**
 * The WebGPU backend for the tab (src/backend/webgpu, browser-safe), handed to src/browser/backend.ts's
 * pickBackend, which decides whether it is used. Kept in one file so the page's only GPU import is here.
 */
import type { Backend } from "../src/backend/backend.js";
import { createWebGpuBackend } from "../src/backend/webgpu/index.js";

export const webGpuFactory = (gpu: never): Promise<Backend> => createWebGpuBackend(gpu);
