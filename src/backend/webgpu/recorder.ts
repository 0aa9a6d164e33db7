/**
 * Records a sequence of dispatches and buffer copies, then encodes them into one command encoder: every
 * dispatch's uniform (≤ 256 bytes) goes into one buffer written once, at 256-byte offsets, so a whole forward
 * is one writeBuffer + one submit. Dispatches in a compute pass see the writes of the ones before them.
 */
/// <reference types="@webgpu/types" />
import { USAGE, type GpuContext } from "./context.js";

const SLOT = 256;

type Op =
  | { kind: "dispatch"; pipeline: GPUComputePipeline; params: ArrayBuffer; buffers: GPUBuffer[]; wg: [number, number, number] }
  | { kind: "copy"; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; bytes: number };

export class Recorder {
  private ops: Op[] = [];
  private nParams = 0;
  private uniforms: GPUBuffer | null = null;
  private uniformSlots = 0;
  /**
   * Bind groups of the last encode, by dispatch index: a decode step records the same dispatches on the same
   * buffers every token, so its bind groups are reused instead of made again (hundreds per token on a 7B).
   */
  private groups: { pipeline: GPUComputePipeline; buffers: GPUBuffer[]; size: number; group: GPUBindGroup }[] = [];

  constructor(readonly ctx: GpuContext) {}

  /** A dispatch whose binding 0 is `params` and bindings 1 … are `buffers`, in order. */
  dispatch(pipeline: GPUComputePipeline, params: ArrayBuffer, buffers: GPUBuffer[], wg: [number, number, number]): void {
    if (wg[0] === 0 || wg[1] === 0 || wg[2] === 0) return;
    this.ops.push({ kind: "dispatch", pipeline, params, buffers, wg });
    this.nParams++;
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes > 0) this.ops.push({ kind: "copy", src, srcOffset, dst, dstOffset, bytes });
  }

  /** Encodes everything recorded (and clears the list); the caller submits the encoder. */
  encode(enc: GPUCommandEncoder): void {
    const ctx = this.ctx;
    if (this.nParams > this.uniformSlots) {
      this.uniforms?.destroy();
      this.uniformSlots = Math.max(this.nParams, this.uniformSlots * 2, 64);
      this.uniforms = ctx.buffer(this.uniformSlots * SLOT, USAGE.UNIFORM | USAGE.COPY_DST, "uniforms");
      this.groups = [];
    }
    const all = new Uint8Array(Math.max(1, this.nParams) * SLOT);
    let slot = 0;
    for (const op of this.ops) if (op.kind === "dispatch") all.set(new Uint8Array(op.params), SLOT * slot++);
    if (this.nParams) ctx.device.queue.writeBuffer(this.uniforms!, 0, all, 0, this.nParams * SLOT);
    slot = 0;
    let pass: GPUComputePassEncoder | null = null;
    for (const op of this.ops) {
      if (op.kind === "copy") {
        pass?.end();
        pass = null;
        enc.copyBufferToBuffer(op.src, op.srcOffset, op.dst, op.dstOffset, op.bytes);
        continue;
      }
      pass ??= enc.beginComputePass();
      const size = op.params.byteLength;
      const i = slot++;
      let cached = this.groups[i];
      if (!cached || cached.pipeline !== op.pipeline || cached.size !== size || !sameBuffers(cached.buffers, op.buffers)) {
        const group = ctx.bindGroup(op.pipeline, [{ buffer: this.uniforms!, offset: SLOT * i, size }, ...op.buffers]);
        cached = this.groups[i] = { pipeline: op.pipeline, buffers: op.buffers, size, group };
      }
      const group = cached.group;
      pass.setPipeline(op.pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(op.wg[0], op.wg[1], op.wg[2]);
    }
    pass?.end();
    this.ops = [];
    this.nParams = 0;
  }

  /** Encodes and submits. */
  submit(): void {
    const enc = this.ctx.device.createCommandEncoder();
    this.encode(enc);
    this.ctx.device.queue.submit([enc.finish()]);
  }
}

/** Packs u32 / f32 fields (as numbers; `f` marks floats) into a uniform's bytes, padded to 16. */
export function params(fields: (number | { f: number })[]): ArrayBuffer {
  const n = Math.ceil(fields.length / 4) * 4;
  const buf = new ArrayBuffer(n * 4);
  const u = new Uint32Array(buf), f = new Float32Array(buf);
  fields.forEach((v, i) => {
    if (typeof v === "number") u[i] = v >>> 0;
    else f[i] = v.f;
  });
  return buf;
}

function sameBuffers(a: GPUBuffer[], b: GPUBuffer[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
