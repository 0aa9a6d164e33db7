/**
 * Picks the kernel backend. "auto" prefers the native addon and falls back to the TypeScript reference with one
 * warning on stderr per process, so a missing compiler never stops the model from running.
 */
import type { Backend } from "./backend.js";
import { XverseError } from "../errors.js";
import { tsBackend } from "./ts/index.js";
import { tryLoadNativeBackend, type NativeOptions } from "./native/index.js";

export type BackendKind = "auto" | "ts" | "native";

/** Every backend a user can name: the CPU ones plus "webgpu" (asynchronous to create; never chosen by auto). */
export type AnyBackendKind = BackendKind | "webgpu";

export interface SelectOptions extends NativeOptions {
  /** Where the fallback warning goes (default: one line on stderr). */
  warn?: (message: string) => void;
}

// Measured on the 2-core dev machine (AVX-512), one native thread, a 4-layer 512-wide model: decode 17-35x,
// prefill 29-49x (f16, int8, int4 weights).
const SLOWDOWN = "20-50x";
let warned = false;

export function selectBackend(kind: BackendKind = "auto", opts: SelectOptions = {}): Backend {
  if (kind === "ts") return tsBackend;
  const r = tryLoadNativeBackend(opts);
  if (r.backend) return r.backend;
  if (kind === "native") {
    throw new XverseError("native_unavailable", `native kernels unavailable (${r.reason}); build them with \`node scripts/build-native.mjs\` or use the TypeScript backend`);
  }
  if (!warned) {
    warned = true;
    const msg = `native kernels unavailable (${r.reason}); using the TypeScript backend, expect ~${SLOWDOWN} slower`;
    if (opts.warn) opts.warn(msg);
    else process.stderr.write(`warning: ${msg}\n`);
  }
  return tsBackend;
}

/**
 * selectBackend for every kind, "webgpu" included: that one needs the optional `webgpu` package and an adapter,
 * and is loaded only when asked for (the import stays out of CPU-only runs).
 */
export async function selectBackendAsync(kind: AnyBackendKind = "auto", opts: SelectOptions = {}): Promise<Backend> {
  if (kind !== "webgpu") return selectBackend(kind, opts);
  const { createNodeWebGpuBackend } = await import("./webgpu/node.js");
  return createNodeWebGpuBackend();
}
