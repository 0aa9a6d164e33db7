/**
 * The native Backend: a thin adapter from the Backend interface to the addon's functions. Weights stay where
 * they are (zero-copy: the addon reads the typed array's memory through its byteOffset); prepareWeight validates
 * the weight once and records its format code (and repacks GGUF Q4_0 into q4_group, whose kernels run faster).
 */
import type { Backend, KvType, Weight, WeightFormat } from "../backend.js";
import { XverseError } from "../../errors.js";
import { type Addon, loadAddon, physicalCores } from "./addon.js";
import { checkBlockWeight, isBlockFormat } from "../ts/blocks.js";
import { matmulRef } from "../ts/matmul.js";
import { embedRowRef } from "../ts/index.js";

export { physicalCores } from "./addon.js";

/** Instruction sets the addon can be told to use (for tests and benchmarks); the default is the best available. */
export type NativeIsa = "scalar" | "avx2" | "avx512" | "avx512_vnni" | "avx512_amx" | "neon" | "neon_dotprod" | "neon_i8mm";

export interface NativeOptions {
  /** Worker threads for matmul and attention (default: physical cores available to this process). */
  threads?: number;
  /** Where the .node file is (default: native/build/Release/xverse_native.node under the package root). */
  path?: string;
}

export interface NativeBackend extends Backend {
  /** The instruction set in use, e.g. "avx512_vnni". */
  readonly isa: string;
  /** All the CPU supports, lowest first. */
  readonly supportedIsas: readonly string[];
  readonly threads: number;
  setThreads(n: number): number;
  /** Runs a lower instruction set than the CPU offers (parity tests run every variant). */
  setIsa(isa: NativeIsa): string;
  /** Whether prepareWeight copies GGUF Q4_0 into q4_group at the current ISA (else its blocks stay as stored). */
  readonly repacksQ4_0: boolean;
}

/**
 * ISAs where GGUF Q4_0 runs faster repacked into q4_group (the VNNI / AMX int4 kernels: small-T and non-AMX
 * prefill beat the block kernel). Elsewhere the blocks stay as stored, mapped from the file: on AVX2 the block
 * kernel is ~2.7× q4_group at T = 128 (bench/RESULTS.md, rows-as-lanes path), on arm64 it has sdot / smmla while
 * q4_group would take the f32 path below dotprod.
 */
const REPACK_Q4_0: ReadonlySet<string> = new Set(["avx512_vnni", "avx512_amx"]);

const FORMAT_CODE: Record<WeightFormat, number> = {
  f32: 0, bf16: 1, f16: 2, q8_row: 3, q4_row: 4, q4_group: 5,
  q8_group: 16, // native/src/group_zp.cc
  // GGUF blocks as stored (native/src/blocks.h)
  q4_0: 6, q4_1: 7, q5_0: 8, q5_1: 9, q8_0: 10, q2_k: 11, q3_k: 12, q4_k: 13, q5_k: 14, q6_k: 15,
};
/** KV storage codes (native/src/kv.cc's KvType). */
const KV_TYPE_CODE: Record<KvType, number> = { f32: 0, f16: 1, q8_0: 2 };

type ArrayCtor = Float32ArrayConstructor | Uint16ArrayConstructor | Int8ArrayConstructor | Uint8ArrayConstructor;
const DATA_TYPE: Record<WeightFormat, ArrayCtor> = {
  f32: Float32Array, bf16: Uint16Array, f16: Uint16Array, q8_row: Int8Array, q4_row: Uint8Array,
  q4_group: Uint8Array, q8_group: Int8Array,
  q4_0: Uint8Array, q4_1: Uint8Array, q5_0: Uint8Array, q5_1: Uint8Array, q8_0: Uint8Array,
  q2_k: Uint8Array, q3_k: Uint8Array, q4_k: Uint8Array, q5_k: Uint8Array, q6_k: Uint8Array,
};

function checkWeight(w: Weight): void {
  if (isBlockFormat(w.format)) return checkBlockWeight(w); // data length = rows × row bytes
  const want = DATA_TYPE[w.format];
  if (want === undefined) throw new XverseError("unsupported", `weight format '${w.format}' is not supported`);
  if (!(w.data instanceof want)) {
    const got = (w.data as object | undefined)?.constructor?.name;
    throw new XverseError("bad_weight", `${w.format} weight needs a ${want.name}, got ${got}`);
  }
  const n = w.format === "q4_row" || w.format === "q4_group" ? (w.rows * w.cols) / 2 : w.rows * w.cols;
  if (w.data.length < n) {
    throw new XverseError("bad_weight", `${w.format} weight [${w.rows}, ${w.cols}] has ${w.data.length} elements, needs ${n}`);
  }
  if ((w.format === "q4_group" || w.format === "q8_group") && !(w.groupSize && w.cols % w.groupSize === 0)) {
    throw new XverseError("bad_weight", `${w.format} weight: groupSize ${w.groupSize} must divide cols ${w.cols}`);
  }
  checkGroupExtras(w);
}

/** GPTQ / AWQ extras: mins (one per scale) and perm (a permutation of the columns), q4_group / q8_group only. */
function checkGroupExtras(w: Weight): void {
  if (!w.mins && !w.perm) return;
  if (w.format !== "q4_group" && w.format !== "q8_group") {
    throw new XverseError("bad_weight", `${w.format} weight: mins / perm are only for q4_group and q8_group weights`);
  }
  const nScales = (w.rows * w.cols) / w.groupSize!;
  if (w.mins && !(w.mins instanceof Float32Array && w.mins.length >= nScales)) {
    throw new XverseError("bad_weight", `${w.format} weight: mins must be a Float32Array of ${nScales} (one per scale)`);
  }
  if (w.perm) {
    if (!(w.perm instanceof Int32Array) || w.perm.length !== w.cols) {
      throw new XverseError("bad_weight", `${w.format} weight: perm must be an Int32Array of ${w.cols} (one per column)`);
    }
    const seen = new Uint8Array(w.cols);
    for (const p of w.perm) {
      if (!(p >= 0 && p < w.cols) || seen[p]) throw new XverseError("bad_weight", `${w.format} weight: perm is not a permutation of 0 … ${w.cols - 1}`);
      seen[p] = 1;
    }
  }
}

/** Marks a weight the native backend has checked; the object identity is the weight's own. */
interface Prepared {
  native: true;
  code: number;
}

function makeBackend(a: Addon): NativeBackend {
  const supported = a.info().supported;
  // Block-format codes with a native kernel at the current ISA (the addon's info().blockFormats; an older build
  // may lack some); the others run on the TS twin.
  let nativeBlocks = new Set(a.info().blockFormats ?? []);
  const repacksQ4_0 = () => !!a.repackQ4_0 && REPACK_Q4_0.has(a.info().isa);
  return {
    name: "native",
    get isa() {
      return a.info().isa;
    },
    supportedIsas: supported,
    get threads() {
      return a.info().threads;
    },
    setThreads: (n: number) => a.setThreads(Math.max(1, Math.floor(n))),
    get repacksQ4_0() {
      return repacksQ4_0();
    },
    setIsa(isa: NativeIsa) {
      const r = a.setIsa(isa);
      nativeBlocks = new Set(a.info().blockFormats ?? []);
      return r;
    },

    prepareWeight(w: Weight): Weight {
      checkWeight(w);
      // Q4_0 is q4_group(32) in another nibble order: repacked (natively, a copy of the same size) where the int4
      // kernels are the faster ones (REPACK_Q4_0)
      if (w.format === "q4_0" && a.repackQ4_0 && repacksQ4_0()) {
        const data = new Uint8Array((w.rows * w.cols) / 2), scales = new Float32Array((w.rows * w.cols) / 32);
        a.adviseHugePages(data.buffer); // faulting the copy in per 2 MiB, not per 4 KiB, halves the load time
        a.repackQ4_0(w.data as Uint8Array, w.rows, w.cols, data, scales);
        const g: Weight = { format: "q4_group", rows: w.rows, cols: w.cols, data, scales, groupSize: 32 };
        return { ...g, handle: { native: true, code: FORMAT_CODE.q4_group } satisfies Prepared };
      }
      const handle: Prepared = { native: true, code: FORMAT_CODE[w.format] };
      return { ...w, handle };
    },

    matmul(y: Float32Array, x: Float32Array, w: Weight, T: number): void {
      const h = w.handle as Prepared | undefined;
      const code = h?.native ? h.code : FORMAT_CODE[w.format];
      if (code >= 6 && code <= 15 && !nativeBlocks.has(code)) {
        if (!h?.native) checkWeight(w);
        return matmulRef(y, x, w, T);
      }
      a.matmul(y, x, code, w.data, w.scales ?? null, w.rows, w.cols, w.groupSize ?? 0, T, w.mins ?? null, w.perm ?? null, w.activations === "f32");
    },
    // One row per token: decoding it in TS costs less than a call into the addon would save.
    embedRow: embedRowRef,
    rmsnorm: (y, x, weight, T, dim, eps) => a.rmsnorm(y, x, weight, T, dim, eps),
    rope: (x, T, nHeads, headDim, cos, sin) => a.rope(x, T, nHeads, headDim, cos, sin),
    prepareKvSegment: (buffer: ArrayBuffer) => { a.adviseHugePages(buffer); },
    kvWrite(kv, k, v, start, T) {
      const L = kv.layout;
      a.kvWrite(kv.buffers, kv.table, KV_TYPE_CODE[L.type], L.nKvHeads, L.headDim, L.blockSize, L.group, L.regionBytes,
        L.scaleOffset, L.blockBytes, kv.blocksPerSegment, kv.layer, k, v, start, T);
    },
    attention(out, q, kv, p) {
      const L = kv.layout;
      if (p.nKvHeads !== L.nKvHeads || p.headDim !== L.headDim) {
        throw new XverseError("bad_argument", `attention: ${p.nKvHeads} kv heads × ${p.headDim} do not match the KV cache's ${L.nKvHeads} × ${L.headDim}`);
      }
      a.kvAttention(kv.buffers, kv.table, KV_TYPE_CODE[L.type], L.nKvHeads, L.headDim, L.blockSize, L.group, L.regionBytes,
        L.scaleOffset, L.blockBytes, kv.blocksPerSegment, kv.layer, out, q, p.T, p.past, p.nHeads, p.scale);
    },
    siluMul: (gate, up, n) => a.siluMul(gate, up, n),
    addInPlace: (y, x, n) => a.addInPlace(y, x, n),
  };
}

export type NativeLoad = { backend: NativeBackend; reason?: undefined } | { backend: null; reason: string };

/** Loads the native backend, or says why it cannot. Never throws. */
export function tryLoadNativeBackend(opts: NativeOptions = {}): NativeLoad {
  const r = loadAddon(opts.path);
  if (!r.addon) return { backend: null, reason: r.reason };
  try {
    r.addon.setThreads(opts.threads ?? physicalCores());
    return { backend: makeBackend(r.addon) };
  } catch (e) {
    return { backend: null, reason: `addon init failed: ${(e as Error).message}` };
  }
}

/** The native backend, or null when the addon is not built or does not load (see tryLoadNativeBackend). */
export function loadNativeBackend(opts: NativeOptions = {}): NativeBackend | null {
  return tryLoadNativeBackend(opts).backend;
}
