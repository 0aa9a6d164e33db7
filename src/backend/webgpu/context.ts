/**
 * The device and what every kernel shares: features, limits, a pipeline cache, buffer helpers and readback.
 * Browser-safe: no Node built-ins; it takes a GPU object (navigator.gpu, or node.ts's Dawn binding).
 */
/// <reference types="@webgpu/types" />
import { XverseError } from "../../errors.js";
import { withShaderF16 } from "./registry.js";

export interface WebGpuOptions {
  /** Use subgroup reductions when the adapter has them (default true; false forces the shared-memory path). */
  subgroups?: boolean;
  /** Largest weight part in bytes (default: the device's maxStorageBufferBindingSize); tests force splits. */
  maxPartBytes?: number;
  /** Largest KV arena (one layer of a pool, kv.ts) in bytes (default: one storage binding); tests lower it. */
  maxKvLayerBytes?: number;
  /**
   * Kernel style: "workgroup" (64 threads share a row and reduce: GPUs) or "thread" (one thread per output, no
   * barriers: CPU drivers, where a barrier is very slow). Default: "thread" on a fallback / SwiftShader adapter.
   */
  style?: "workgroup" | "thread";
  /** Adapter power preference (default high-performance). */
  powerPreference?: GPUPowerPreference;
  /**
   * With `shader-f16`: products in f16 in the tiled prefill matmul (GPUs, T > 8; f32 sums every 4 columns, see
   * blocks/tiled.ts). Default true; false keeps every product f32 (the CPU engine's results to ~1e-6). Without
   * shader-f16 this is ignored. f16 reads (weights, scales, KV) use the hardware conversion either way (exact).
   */
  f16?: boolean;
}

export interface AdapterSummary {
  name: string;
  /** A CPU implementation (SwiftShader, or the adapter says it is a fallback). */
  cpu: boolean;
  features: string[];
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

/** GPUBufferUsage flags (fixed by the spec; the global may be absent in Node until the binding installs it). */
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const S = USAGE;

export class GpuContext {
  readonly hasSubgroups: boolean;
  readonly hasF16: boolean;
  /** Largest KV arena: one layer of a pool (kv.ts). */
  readonly maxKvLayerBytes: number;
  /** f16 products in the tiled prefill (shader-f16 present and not refused by opts.f16). */
  readonly f16Math: boolean;
  readonly maxBinding: number;
  readonly maxPartBytes: number;
  readonly style: "workgroup" | "thread";
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private lost: string | null = null;
  private error: string | null = null;
  private readonly staging: GPUBuffer[] = [];

  private constructor(
    /** Held for the device's life: Dawn in Node aborts when the GPU object is collected before its devices. */
    readonly gpu: GPU,
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
    opts: WebGpuOptions,
  ) {
    this.hasSubgroups = (opts.subgroups ?? true) && device.features.has("subgroups");
    this.hasF16 = device.features.has("shader-f16");
    this.f16Math = this.hasF16 && (opts.f16 ?? true);
    this.maxBinding = device.limits.maxStorageBufferBindingSize;
    this.maxPartBytes = Math.min(opts.maxPartBytes ?? Infinity, this.maxBinding, device.limits.maxBufferSize) & ~3;
    this.maxKvLayerBytes = Math.min(opts.maxKvLayerBytes ?? Infinity, this.maxBinding, device.limits.maxBufferSize);
    this.style = opts.style ?? (adapter.cpu ? "thread" : "workgroup");
    void device.lost.then((info) => { this.lost = info.message || info.reason || "device lost"; });
    // validation errors (a shader that does not compile, a bad binding) surface at the next readback
    device.addEventListener("uncapturederror", (ev) => {
      this.error ??= (ev as GPUUncapturedErrorEvent).error.message;
    });
  }

  static async create(gpu: GPU, opts: WebGpuOptions = {}): Promise<GpuContext> {
    const adapter = await gpu.requestAdapter({ powerPreference: opts.powerPreference ?? "high-performance" });
    if (!adapter) {
      throw new XverseError("webgpu_unavailable", "WebGPU: no adapter found (no GPU driver; in Node set VK_ICD_FILENAMES to a Vulkan driver such as SwiftShader's vk_swiftshader_icd.json, or use --backend native)");
    }
    const want: GPUFeatureName[] = [];
    for (const f of ["subgroups", "shader-f16"] as GPUFeatureName[]) if (adapter.features.has(f)) want.push(f);
    // ask for the adapter's largest buffers: weights bind whole rows up to this size before splitting
    const L = adapter.limits;
    const requiredLimits: Record<string, number> = {
      maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
      maxBufferSize: L.maxBufferSize,
      maxStorageBuffersPerShaderStage: L.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
    };
    const device = await adapter.requestDevice({ requiredFeatures: want, requiredLimits });
    const info = adapter.info;
    const name = [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s).join(" ") || "unknown adapter";
    const cpu = /swiftshader|llvmpipe|lavapipe|warp/i.test(name) || (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true || info?.isFallbackAdapter === true;
    return new GpuContext(gpu, device, {
      name, cpu, features: [...adapter.features].sort(),
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize, maxBufferSize: device.limits.maxBufferSize,
    }, opts);
  }

  /** Throws the device's loss or its first validation error (then clears the error). */
  check(): void {
    if (this.lost) throw new XverseError("webgpu_lost", `WebGPU device lost: ${this.lost}`);
    const e = this.error;
    if (e) {
      this.error = null;
      throw new XverseError("webgpu_error", `WebGPU: ${e}`);
    }
  }

  /**
   * A compute pipeline for this WGSL and entry point, compiled once (layout "auto"). `wgsl` may be a function:
   * it runs only when `key` is new, so a caller on the forward's path builds no shader text per call.
   */
  pipeline(key: string, wgsl: string | (() => string), entryPoint: string): GPUComputePipeline {
    let p = this.pipelines.get(key);
    if (!p) {
      const src = typeof wgsl === "function" ? wgsl() : wgsl;
      // with shader-f16, f16 → f32 in every module is the hardware conversion (registry.ts: withShaderF16)
      const code = this.hasF16 ? withShaderF16(src) : src;
      const module = this.device.createShaderModule({ code, label: key });
      p = this.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint }, label: key });
      this.pipelines.set(key, p);
    }
    return p;
  }

  buffer(size: number, usage: number, label?: string): GPUBuffer {
    return this.device.createBuffer({ size: Math.max(16, Math.ceil(size / 16) * 16), usage, label });
  }

  /** A storage buffer holding these bytes (padded with zeros to 4). */
  upload(data: ArrayBufferView, usage = S.STORAGE | S.COPY_DST | S.COPY_SRC, label?: string): GPUBuffer {
    const n = data.byteLength;
    const b = this.buffer(n, usage, label);
    const whole = n & ~3;
    // (typed as ArrayBuffer-backed: the DOM typings refuse a view that might sit on a SharedArrayBuffer)
    const src = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, n);
    if (whole > 0) this.device.queue.writeBuffer(b, 0, src, 0, whole);
    if (whole < n) {
      const tail = new Uint8Array(4);
      tail.set(src.subarray(whole));
      this.device.queue.writeBuffer(b, whole, tail);
    }
    return b;
  }

  bindGroup(p: GPUComputePipeline, buffers: (GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number })[]): GPUBindGroup {
    return this.device.createBindGroup({
      layout: p.getBindGroupLayout(0),
      entries: buffers.map((b, i) => ({ binding: i, resource: "buffer" in b ? b : { buffer: b } })),
    });
  }

  /** Copies `bytes` bytes of src (from offset) back to the CPU after everything submitted so far. */
  async read(src: GPUBuffer, bytes: number, offset = 0, encoder?: GPUCommandEncoder): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    // staging buffers are reused (decode reads one logits row per token); reads in flight take distinct ones
    const i = this.staging.findIndex((b) => b.size >= size);
    const staging = i >= 0 ? this.staging.splice(i, 1)[0] : this.device.createBuffer({ size: Math.max(256, size), usage: S.MAP_READ | S.COPY_DST });
    const enc = encoder ?? this.device.createCommandEncoder();
    if (size > 0) enc.copyBufferToBuffer(src, offset, staging, 0, size);
    this.device.queue.submit([enc.finish()]);
    try {
      await staging.mapAsync(1 /* GPUMapMode.READ */, 0, Math.max(4, size));
    } catch (e) {
      this.check();
      throw e;
    }
    const out = staging.getMappedRange(0, Math.max(4, size)).slice(0, bytes);
    staging.unmap();
    if (this.staging.length < 4) this.staging.push(staging);
    else staging.destroy();
    this.check();
    return out;
  }

  destroy(): void {
    this.device.destroy();
  }
}
