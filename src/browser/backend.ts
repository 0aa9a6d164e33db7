/**
 * The one place a tab chooses its backend: WebGPU when the browser has navigator.gpu, an adapter is found and
 * the WebGPU backend starts on it; else the TypeScript reference backend. The reason is returned so the page
 * can say which one runs and why.
 */
import type { Backend } from "../backend/backend.js";
import { tsBackend } from "../backend/ts/index.js";

export interface PickedBackend {
  backend: Backend;
  kind: "webgpu" | "ts";
  /** For people: the adapter used, or why WebGPU was not. */
  reason: string;
}

interface GpuLike {
  requestAdapter(): Promise<{ info?: { vendor?: string; architecture?: string; description?: string } } | null>;
}

export interface PickOptions {
  /** navigator.gpu (undefined where the browser has no WebGPU). */
  gpu?: unknown;
  /** Starts the WebGPU backend on `gpu` (src/backend/webgpu's createWebGpuBackend); absent: TS only. */
  webgpu?: (gpu: never) => Promise<Backend>;
  /** "ts" forces the TypeScript backend (a page's ?backend=ts). */
  prefer?: "webgpu" | "ts";
}

export async function pickBackend(o: PickOptions): Promise<PickedBackend> {
  const ts = (reason: string): PickedBackend => ({ backend: tsBackend, kind: "ts", reason });
  if (o.prefer === "ts") return ts("TypeScript backend chosen (backend=ts)");
  if (!o.gpu) return ts("WebGPU is not available in this browser (no navigator.gpu)");
  if (!o.webgpu) return ts("this build has no WebGPU backend");
  let adapterName = "";
  try {
    const adapter = await (o.gpu as GpuLike).requestAdapter();
    if (!adapter) return ts("WebGPU found no adapter");
    const i = adapter.info ?? {};
    adapterName = [i.vendor, i.architecture, i.description].filter(Boolean).join(" ") || "unnamed adapter";
  } catch (e) {
    return ts(`WebGPU adapter request failed: ${(e as Error).message}`);
  }
  try {
    const backend = await o.webgpu(o.gpu as never);
    return { backend, kind: "webgpu", reason: `WebGPU on ${adapterName}` };
  } catch (e) {
    return ts(`the WebGPU backend did not start (${(e as Error).message})`);
  }
}
