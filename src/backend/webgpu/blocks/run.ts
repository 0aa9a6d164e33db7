/**
 * Runs one registered block kernel end to end on a bare GPUDevice (upload, dispatch per row part, read back):
 * what the parity tests and benchmarks use, independent of the backend core. Not for the decode loop (it
 * allocates buffers per call); the core (../index.ts) keeps weights resident and encodes the same dispatches.
 */
/// <reference types="@webgpu/types" />
import type { Weight } from "../../backend.js";
import { XverseError } from "../../../errors.js";
import { blockRowBytes, checkBlockWeight, isBlockFormat } from "../../ts/blocks.js";
import { formatKernel, withShaderF16 } from "../registry.js";
import type { BlockFormatKernel } from "./index.js"; // (importing index.js registers the block kernels)
import "./index.js";

const STORAGE = 0x80, COPY_DST = 0x8, COPY_SRC = 0x4, UNIFORM = 0x40, MAP_READ = 0x1;

const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();
function pipeline(dev: GPUDevice, code: string, entryPoint: string): GPUComputePipeline {
  let m = pipelines.get(dev);
  if (!m) pipelines.set(dev, (m = new Map()));
  let p = m.get(code);
  if (!p) {
    // as GpuContext.pipeline does: the hardware f16 conversion on a device with shader-f16
    const wgsl = dev.features.has("shader-f16") ? withShaderF16(code) : code;
    p = dev.createComputePipeline({ layout: "auto", compute: { module: dev.createShaderModule({ code: wgsl }), entryPoint } });
    m.set(code, p);
  }
  return p;
}

function upload(dev: GPUDevice, src: ArrayBufferView, usage = STORAGE | COPY_DST): GPUBuffer {
  const n = src.byteLength;
  const b = dev.createBuffer({ size: Math.max(16, Math.ceil(n / 16) * 16), usage: usage | COPY_DST });
  const bytes = new Uint8Array(Math.ceil(n / 4) * 4);
  bytes.set(new Uint8Array(src.buffer, src.byteOffset, n));
  if (bytes.length) dev.queue.writeBuffer(b, 0, bytes);
  return b;
}

async function readBack(dev: GPUDevice, enc: GPUCommandEncoder, src: GPUBuffer, n: number): Promise<Float32Array> {
  const staging = dev.createBuffer({ size: Math.max(16, n * 4), usage: MAP_READ | COPY_DST });
  enc.copyBufferToBuffer(src, 0, staging, 0, n * 4);
  dev.queue.submit([enc.finish()]);
  await staging.mapAsync(1);
  const out = new Float32Array(staging.getMappedRange().slice(0, n * 4));
  staging.unmap();
  staging.destroy();
  return out;
}

function kernelOf(w: Weight) {
  if (!isBlockFormat(w.format)) throw new XverseError("unsupported", `blocks/run: ${w.format} is not a GGUF block format`);
  checkBlockWeight(w);
  const k = formatKernel(w.format);
  if (!k?.embed) throw new XverseError("unsupported", `blocks/run: no WebGPU kernel registered for ${w.format}`);
  return { k, embed: k.embed, rb: blockRowBytes(w.format, w.cols) };
}

/** The weight's bytes in row parts of at most partRows rows (each its own buffer, as the core splits). */
function parts(dev: GPUDevice, w: Weight, rb: number, partRows: number): { buf: GPUBuffer; row0: number; rows: number }[] {
  const data = w.data as Uint8Array;
  const out = [];
  for (let r0 = 0; r0 < w.rows; r0 += partRows) {
    const rows = Math.min(partRows, w.rows - r0);
    out.push({ buf: upload(dev, data.subarray(r0 * rb, (r0 + rows) * rb)), row0: r0, rows });
  }
  return out;
}

export interface RunOptions {
  /** Split the weight in parts of this many rows (one buffer and one dispatch each), as the core does. */
  partRows?: number;
  /**
   * Run this variant (BlockFormatKernel.variant) instead of the plain registered kernel; subgroups need a
   * device created with the "subgroups" feature, f16 (the tiled prefill's f16 products) one with "shader-f16".
   */
  variant?: { subgroups?: boolean; style?: "workgroup" | "thread"; f16?: boolean };
  /** Dispatch as gridX × ⌈n / gridX⌉ workgroups instead of the kernel's split (tests the 2-D grid mapping). */
  gridX?: number;
}

/** y (T, w.rows) = x (T, w.cols) · dequant(W)ᵀ on the GPU, one dispatch per part. */
export async function runMatmul(dev: GPUDevice, w: Weight, x: Float32Array, T: number, opts: RunOptions = {}): Promise<Float32Array> {
  const { k, rb } = kernelOf(w);
  const partRows = opts.partRows ?? w.rows;
  if (!(Number.isInteger(T) && T >= 1 && x.length >= T * w.cols)) {
    throw new XverseError("bad_input", `blocks/run: x has ${x.length} values, T = ${T} tokens of ${w.cols} columns need ${T * w.cols}`);
  }
  const v = opts.variant;
  const kern = v ? (k as BlockFormatKernel).variant({ subgroups: !!v.subgroups, style: v.style ?? "workgroup", T, f16: !!v.f16 }) : k;
  const p = pipeline(dev, kern.wgsl, kern.entryPoint);
  const xb = upload(dev, x);
  const yb = dev.createBuffer({ size: Math.max(16, T * w.rows * 4), usage: STORAGE | COPY_SRC });
  const enc = dev.createCommandEncoder();
  const temps: GPUBuffer[] = [xb, yb];
  for (const part of parts(dev, w, rb, partRows)) {
    // MatmulParams: rows, cols, T, rowBase, yStride, groupSize, flags, pad
    const pb = upload(dev, new Uint32Array([part.rows, w.cols, T, part.row0, w.rows, 0, 0, 0]), UNIFORM);
    temps.push(part.buf, pb);
    const bg = dev.createBindGroup({
      layout: p.getBindGroupLayout(0),
      entries: [pb, xb, part.buf, yb].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const pass = enc.beginComputePass();
    pass.setPipeline(p);
    pass.setBindGroup(0, bg);
    const wg = kern.workgroups(part.rows, T);
    if (opts.gridX) [wg[0], wg[1]] = [opts.gridX, Math.ceil((wg[0] * wg[1]) / opts.gridX)];
    pass.dispatchWorkgroups(...wg);
    pass.end();
  }
  const y = await readBack(dev, enc, yb, T * w.rows);
  for (const b of temps) b.destroy();
  return y;
}

/** Rows `rows` of W decoded to f32, concatenated: (rows.length, w.cols); one dispatch per row. */
export async function runEmbed(dev: GPUDevice, w: Weight, rows: number[], partRows = w.rows): Promise<Float32Array> {
  const { embed, rb } = kernelOf(w);
  const p = pipeline(dev, embed.wgsl, embed.entryPoint);
  const ps = parts(dev, w, rb, partRows);
  const n = rows.length * w.cols;
  const ob = dev.createBuffer({ size: Math.max(16, n * 4), usage: STORAGE | COPY_SRC });
  const enc = dev.createCommandEncoder();
  const temps: GPUBuffer[] = [ob, ...ps.map((q) => q.buf)];
  rows.forEach((row, i) => {
    if (!(Number.isInteger(row) && row >= 0 && row < w.rows)) throw new XverseError("bad_input", `blocks/run: row ${row} is outside 0 … ${w.rows - 1}`);
    const part = ps[Math.floor(row / partRows)];
    // EmbedParams: row (in the part), cols, outOffset, pad
    const pb = upload(dev, new Uint32Array([row - part.row0, w.cols, i * w.cols, 0]), UNIFORM);
    temps.push(pb);
    const bg = dev.createBindGroup({
      layout: p.getBindGroupLayout(0),
      entries: [pb, part.buf, ob].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const pass = enc.beginComputePass();
    pass.setPipeline(p);
    pass.setBindGroup(0, bg);
    pass.dispatchWorkgroups(...embed.workgroups(w.cols));
    pass.end();
  });
  const out = await readBack(dev, enc, ob, n);
  for (const b of temps) b.destroy();
  return out;
}
