/**
 * The WebGPU backend for the tab, or null while src/backend/webgpu is not part of the build.
 * (Kept in one file so wiring it in is one import.)
 */
import type { Backend } from "../src/backend/backend.js";

export const webGpuFactory: ((gpu: never) => Promise<Backend>) | undefined = undefined;
