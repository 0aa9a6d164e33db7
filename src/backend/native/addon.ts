/**
 * Finding and loading the compiled addon (native/build/Release/xverse_native.node), and its raw call signatures.
 * Kept apart from the Backend adapter so a missing or broken build is one `reason` string, never a throw.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface AddonInfo {
  isa: string;
  threads: number;
  hardwareThreads: number;
  supported: string[];
  /** Block-format codes (6 … 15) with a native kernel at the current ISA (absent from older builds). */
  blockFormats?: number[];
}

/** The functions the addon exports (native/src/addon.cc); every call is synchronous and validates its arguments. */
export interface Addon {
  info(): AddonInfo;
  setIsa(isa: string): string;
  setThreads(n: number): number;
  matmul(
    y: Float32Array, x: Float32Array, format: number, data: ArrayBufferView, scales: Float32Array | null,
    rows: number, cols: number, group: number, T: number,
    /** q4_group / q8_group (GPTQ / AWQ): one min per scale, and the stored columns' input order (group_zp.cc). */
    mins?: Float32Array | null, perm?: Int32Array | null,
    /** true: f32 activations on every ISA (Weight.activations "f32"); older builds ignore it. */
    exactActivations?: boolean,
  ): void;
  /** GGUF Q4_0 blocks → q4_group(32) data and scales (native/src/repack.cc). Absent from older builds. */
  repackQ4_0?(src: Uint8Array, rows: number, cols: number, data: Uint8Array, scales: Float32Array): void;
  rmsnorm(y: Float32Array, x: Float32Array, w: Float32Array, T: number, dim: number, eps: number): void;
  rope(x: Float32Array, T: number, nHeads: number, headDim: number, cos: Float32Array, sin: Float32Array): void;
  /**
   * Paged KV cache (native/src/kv.cc). The first twelve arguments name one layer of one sequence's cache: the
   * pool's segments, the block table, then the layout numbers (KvLayout, with KV_TYPE_CODE for the type) and the
   * layer. Every block id the call touches is checked against the segments.
   */
  kvWrite(
    buffers: readonly ArrayBuffer[], table: Int32Array, type: number, nKvHeads: number, headDim: number,
    blockSize: number, group: number, regionBytes: number, scaleOffset: number, blockBytes: number,
    blocksPerSegment: number, layer: number, k: Float32Array, v: Float32Array, start: number, T: number,
  ): void;
  kvAttention(
    buffers: readonly ArrayBuffer[], table: Int32Array, type: number, nKvHeads: number, headDim: number,
    blockSize: number, group: number, regionBytes: number, scaleOffset: number, blockBytes: number,
    blocksPerSegment: number, layer: number, out: Float32Array, q: Float32Array, T: number, past: number,
    nHeads: number, scale: number,
  ): void;
  /** madvise(MADV_HUGEPAGE) on the buffer's 2 MiB-aligned part (Linux); whether it was accepted. */
  adviseHugePages(buffer: ArrayBuffer): boolean;
  siluMul(gate: Float32Array, up: Float32Array, n: number): void;
  addInPlace(y: Float32Array, x: Float32Array, n: number): void;
  /**
   * Bytes [offset, offset + length) of a file (offset page-aligned, length ≤ 4 GiB) as an ArrayBuffer over a
   * read-only private mapping (native/src/mmap.cc), unmapped when the buffer is collected; undefined where
   * there is no mmap. Absent from addons built before it existed.
   */
  mapFile?(path: string, offset: number, length: number): ArrayBuffer | undefined;
  /** Faults [offset, offset + length) of a mapping in now (reads it from disk if it is not cached). */
  populate?(buffer: ArrayBuffer, offset: number, length: number): void;
  /** Drops the whole pages of [offset, offset + length) of a mapFile buffer from this process (still cached). */
  release?(buffer: ArrayBuffer, offset: number, length: number): boolean;
}

const ADDON_REL = join("native", "build", "Release", "xverse_native.node");

/** The repository root: the nearest ancestor of this file holding native/binding.gyp (works from src/ and dist/). */
function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    if (existsSync(join(dir, "native", "binding.gyp"))) return dir;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

/** The addon to load: $XVERSE_NATIVE_ADDON when set (a build kept elsewhere, e.g. one per developer), else the package's. */
export function defaultAddonPath(): string | null {
  if (process.env.XVERSE_NATIVE_ADDON) return resolve(process.env.XVERSE_NATIVE_ADDON);
  const root = packageRoot();
  return root ? join(root, ADDON_REL) : null;
}

export type AddonLoad = { addon: Addon; path: string } | { addon: null; reason: string };

/** Loads the addon; never throws. `path` overrides where the .node file is looked for. */
export function loadAddon(path?: string): AddonLoad {
  const p = path ? resolve(path) : defaultAddonPath();
  if (!p) return { addon: null, reason: "package root with native/binding.gyp not found" };
  if (!existsSync(p)) return { addon: null, reason: `${p} not built (run \`node scripts/build-native.mjs\`)` };
  try {
    const addon = createRequire(import.meta.url)(p) as Addon;
    if (typeof addon?.matmul !== "function") return { addon: null, reason: `${p} is not the xverse addon` };
    return { addon, path: p };
  } catch (e) {
    return { addon: null, reason: `${p} failed to load: ${(e as Error).message.split("\n")[0]}` };
  }
}

/**
 * Physical cores available to this process: SMT siblings share one core's FMA units and memory port, so a
 * second thread per core mostly adds contention for these bandwidth-bound kernels.
 */
export function physicalCores(): number {
  const logical = os.availableParallelism();
  if (process.platform !== "linux") return logical;
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    const cores = new Set<string>();
    let phys = "0";
    for (const line of info.split("\n")) {
      const m = /^(physical id|core id)\s*:\s*(\d+)/.exec(line);
      if (!m) continue;
      if (m[1] === "physical id") phys = m[2];
      else cores.add(`${phys}:${m[2]}`);
    }
    return cores.size > 0 ? Math.max(1, Math.min(logical, cores.size)) : logical;
  } catch {
    return logical;
  }
}
