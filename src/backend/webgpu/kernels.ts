/**
 * The WebGPU kernels, one `encode*` method each (recorded into a Recorder, so a forward composes them into one
 * submit), plus async one-shot versions (`matmul`, `rmsnorm`, …) that upload inputs, run one kernel and read the
 * result back: what the parity tests compare with the TS reference backend.
 */
/// <reference types="@webgpu/types" />
import type { AttentionParams, KvLayout, KvView, Weight } from "../backend.js";
import { XverseError } from "../../errors.js";
import { USAGE, type GpuContext } from "./context.js";
import { Recorder, params } from "./recorder.js";
import { formatKernel, splitGrid } from "./registry.js";
import { gpuWeight } from "./weights.js";
import { tokenMeta } from "./kv.js";
import { prefillWgsl, NT, RT } from "./blocks/tiled.js";
import { DENSE_TILED, type TiledFormat } from "./blocks/shaders.js";
import { denseMatmulWgsl, DENSE_FORMATS, MATMUL_TOKENS, type DenseFormat } from "./wgsl/matmul.js";
import { ADD_WGSL, addRmsnormWgsl, RMSNORM_THREAD_WGSL, RMSNORM_WGSL, ROPE_WGSL, SILU_MUL_HALVES_WGSL, SILU_MUL_WGSL } from "./wgsl/elementwise.js";
import { ATTENTION_THREAD_WGSL, ATTENTION_WGSL, KV_WRITE_Q8_WGSL, KV_WRITE_WGSL } from "./wgsl/attention.js";

const STORAGE = USAGE.STORAGE | USAGE.COPY_DST | USAGE.COPY_SRC;

/** Workgroups for n items of 64 threads, split so each dimension stays ≤ 32768. */
function grid64(n: number): [number, number, number] {
  const [x, y] = splitGrid(Math.ceil(n / 64));
  return n === 0 ? [0, 1, 1] : [x, y, 1];
}

/** What kvWrite / attention need to find a token's keys: the arena(s) and the per-token position / table offset. */
export interface KvBinding {
  /**
   * perLayer (the forward, kv.ts): arenas[l] holds layer l of every block (K then V region per block);
   * otherwise arenas[0] holds whole blocks in the CPU layout (the parity tests' copy of a pool's segments).
   */
  arenas: GPUBuffer[];
  perLayer: boolean;
  meta: GPUBuffer; // (N, 2) u32: position, offset of the sequence's table in `tables`
  tables: GPUBuffer; // i32 block ids of every sequence, concatenated
  N: number;
  blockSize: number;
  regionWords: number;
  blockWords: number;
  /** 0 f32, 1 f16, 2 q8_0 */
  kind: number;
  /** q8_0: values per scale, and the scales' word offset inside a region. */
  group: number;
  scaleWords: number;
}

/** The layout numbers the KV kernels take (words: every region and block is a multiple of 64 bytes). */
export function kvKind(L: KvLayout): Pick<KvBinding, "regionWords" | "blockWords" | "kind" | "group" | "scaleWords"> {
  return {
    regionWords: L.regionBytes / 4, blockWords: L.blockBytes / 4, kind: L.type === "f32" ? 0 : L.type === "f16" ? 1 : 2,
    group: L.group, scaleWords: L.scaleOffset / 4,
  };
}

export class WebGpuKernels {
  constructor(readonly ctx: GpuContext) {}

  // --- encoders (used by the forward) ---

  /** y (T, w.rows) = x (T, w.cols) · Wᵀ, one dispatch per weight part. */
  encodeMatmul(rec: Recorder, y: GPUBuffer, x: GPUBuffer, w: Weight, T: number): void {
    const g = gpuWeight(this.ctx, w);
    const reg = DENSE_FORMATS.includes(w.format) ? undefined : formatKernel(w.format);
    let pipeline: GPUComputePipeline;
    let extra: GPUBuffer[] = [];
    let regGrid = reg?.workgroups;
    if (reg?.variant) {
      const k = reg.variant({ subgroups: this.ctx.hasSubgroups, style: this.ctx.style, T, f16: this.ctx.f16Math });
      pipeline = this.ctx.pipeline(`fmt:${k.key}`, k.wgsl, k.entryPoint);
      regGrid = k.workgroups;
    } else if (reg) {
      pipeline = this.ctx.pipeline(`fmt:${w.format}`, reg.wgsl, reg.entryPoint);
    } else if (this.ctx.style === "workgroup" && T > MATMUL_TOKENS && DENSE_TILED.includes(w.format) && w.cols % 32 === 0) {
      // prefill of an f32 / f16 / bf16 weight on a GPU: the block formats' tiled kernel (64 rows × 32 tokens)
      const f16 = this.ctx.f16Math;
      pipeline = this.ctx.pipeline(`dense-prefill:${w.format}:${+f16}`, () => prefillWgsl(w.format as TiledFormat, { f16 }), "main");
      regGrid = (rows, T) => [...splitGrid(Math.ceil(rows / RT)), Math.ceil(T / NT)];
    } else {
      const f = w.format as DenseFormat;
      if (!DENSE_FORMATS.includes(f)) throw new XverseError("unsupported", `WebGPU: no kernel for ${w.format} weights`);
      const v = { format: f, mins: !!g.mins, perm: !!g.perm, subgroups: this.ctx.hasSubgroups, style: this.ctx.style };
      pipeline = this.ctx.pipeline(`dense:${f}:${+v.mins}${+v.perm}${+v.subgroups}:${v.style}`, () => denseMatmulWgsl(v), "main");
      if (g.scales) extra.push(g.scales);
      if (g.mins) extra.push(g.mins);
      if (g.perm) extra.push(g.perm);
      if ((f === "q4_group" || f === "q8_group") && !(w.groupSize! > 0 && w.cols % w.groupSize! === 0)) {
        throw new XverseError("bad_weight", `WebGPU: ${f} weight needs a group size dividing its ${w.cols} columns (got ${w.groupSize})`);
      }
    }
    for (const part of g.parts) {
      const p = params([part.rows, w.cols, T, part.rowStart, w.rows, w.groupSize ?? 0, 0, 0]);
      let wg: [number, number, number];
      if (regGrid) wg = regGrid(part.rows, T);
      else if (this.ctx.style === "thread") wg = grid64(part.rows * Math.ceil(T / MATMUL_TOKENS));
      else {
        const [gx, gy] = splitGrid(part.rows);
        wg = [gx, gy, Math.ceil(T / MATMUL_TOKENS)];
      }
      rec.dispatch(pipeline, p, [x, part.buffer, y, ...extra], wg);
    }
  }

  /** y (T, dim) = rmsnorm(x) ⊙ g; y must not alias x. */
  encodeRmsnorm(rec: Recorder, y: GPUBuffer, x: GPUBuffer, g: GPUBuffer, T: number, dim: number, eps: number): void {
    const p = params([T, dim, { f: eps }, 0]);
    if (this.ctx.style === "thread") return rec.dispatch(this.ctx.pipeline("rmsnorm_t", RMSNORM_THREAD_WGSL, "main"), p, [x, g, y], grid64(T));
    const [gx, gy] = splitGrid(T);
    rec.dispatch(this.ctx.pipeline("rmsnorm", RMSNORM_WGSL, "main"), p, [x, g, y], [gx, gy, 1]);
  }

  /** In place on q (T, nHeads, headDim) and k (T, nKvHeads, headDim) with cos, sin (T, headDim/2). */
  encodeRope(rec: Recorder, q: GPUBuffer, k: GPUBuffer, cos: GPUBuffer, sin: GPUBuffer, T: number, nHeads: number, nKvHeads: number, headDim: number): void {
    const nq = T * nHeads * (headDim / 2), nk = T * nKvHeads * (headDim / 2);
    rec.dispatch(this.ctx.pipeline("rope", ROPE_WGSL, "main"), params([nq, nk, nHeads, nKvHeads, headDim, 0, 0, 0]), [q, k, cos, sin], grid64(nq + nk));
  }

  /** x (T, dim) += d, then y = rmsnorm(x) ⊙ g: a residual add and the next norm in one dispatch. */
  encodeAddRmsnorm(rec: Recorder, y: GPUBuffer, x: GPUBuffer, d: GPUBuffer, g: GPUBuffer, T: number, dim: number, eps: number): void {
    const p = params([T, dim, { f: eps }, 0]), style = this.ctx.style;
    const pipe = this.ctx.pipeline(`add_rmsnorm:${style}`, () => addRmsnormWgsl(style), "main");
    if (style === "thread") return rec.dispatch(pipe, p, [x, d, g, y], grid64(T));
    const [gx, gy] = splitGrid(T);
    rec.dispatch(pipe, p, [x, d, g, y], [gx, gy, 1]);
  }

  encodeSiluMul(rec: Recorder, gate: GPUBuffer, up: GPUBuffer, n: number): void {
    rec.dispatch(this.ctx.pipeline("silu_mul", SILU_MUL_WGSL, "main"), params([n, 0, 0, 0]), [gate, up], grid64(n));
  }

  /** gate (T, n) = silu(gu[:, :n]) ⊙ gu[:, n:], gu (T, 2n) the fused gate/up matmul's output. */
  encodeSiluMulHalves(rec: Recorder, gate: GPUBuffer, gu: GPUBuffer, T: number, n: number): void {
    rec.dispatch(this.ctx.pipeline("silu_mul_halves", SILU_MUL_HALVES_WGSL, "main"), params([T * n, n, 0, 0]), [gate, gu], grid64(T * n));
  }

  encodeAdd(rec: Recorder, y: GPUBuffer, x: GPUBuffer, n: number): void {
    rec.dispatch(this.ctx.pipeline("add", ADD_WGSL, "main"), params([n, 0, 0, 0]), [y, x], grid64(n));
  }

  /** The kernels' parameters and the buffer holding `layer`: a per-layer arena is one layer's blocks (layer 0). */
  private kvParams(kv: KvBinding, layer: number, nHeads: number, nKvHeads: number, headDim: number, scale: number): { p: ArrayBuffer; arena: GPUBuffer } {
    const [blockWords, l, arena] = kv.perLayer ? [2 * kv.regionWords, 0, kv.arenas[layer]] : [kv.blockWords, layer, kv.arenas[0]];
    return { p: params([kv.N, nHeads, nKvHeads, headDim, kv.blockSize, kv.regionWords, blockWords, l, kv.kind, { f: scale }, kv.group, kv.scaleWords]), arena };
  }

  /** Stores k, v (N, nKvHeads·headDim) at each token's position in its sequence's blocks. */
  encodeKvWrite(rec: Recorder, kv: KvBinding, layer: number, k: GPUBuffer, v: GPUBuffer, nKvHeads: number, headDim: number): void {
    const { p, arena } = this.kvParams(kv, layer, 0, nKvHeads, headDim, 0), bufs = [kv.meta, kv.tables, k, v, arena];
    if (kv.kind === 2) {
      rec.dispatch(this.ctx.pipeline("kv_write_q8", KV_WRITE_Q8_WGSL, "main"), p, bufs, grid64(2 * kv.N * nKvHeads * headDim / kv.group));
      return;
    }
    const words = 2 * kv.N * nKvHeads * headDim / (kv.kind === 1 ? 2 : 1);
    rec.dispatch(this.ctx.pipeline("kv_write", KV_WRITE_WGSL, "main"), p, bufs, grid64(words));
  }

  /** out (N, nHeads·headDim): token n attends to keys 0 … its position of its own sequence. */
  encodeAttention(rec: Recorder, kv: KvBinding, layer: number, out: GPUBuffer, q: GPUBuffer, nHeads: number, nKvHeads: number, headDim: number, scale: number): void {
    if (headDim > 256 || headDim % 2) throw new XverseError("unsupported", `WebGPU attention: headDim ${headDim} must be even and ≤ 256`);
    const { p, arena } = this.kvParams(kv, layer, nHeads, nKvHeads, headDim, scale), bufs = [kv.meta, kv.tables, q, arena, out];
    if (this.ctx.style === "thread") return rec.dispatch(this.ctx.pipeline("attention_t", ATTENTION_THREAD_WGSL, "main"), p, bufs, grid64(kv.N * nHeads));
    const [gx, gy] = splitGrid(kv.N * nHeads);
    rec.dispatch(this.ctx.pipeline("attention", ATTENTION_WGSL, "main"), p, bufs, [gx, gy, 1]);
  }

  // --- one-shot versions for tests and single-kernel use ---

  storage(data: ArrayBufferView | number): GPUBuffer {
    return typeof data === "number" ? this.ctx.buffer(data, STORAGE) : this.ctx.upload(data);
  }

  async readF32(b: GPUBuffer, n: number, rec?: Recorder): Promise<Float32Array> {
    const enc = this.ctx.device.createCommandEncoder();
    rec?.encode(enc);
    return new Float32Array(await this.ctx.read(b, n * 4, 0, enc));
  }

  async matmul(x: Float32Array, w: Weight, T: number): Promise<Float32Array> {
    const rec = new Recorder(this.ctx);
    const xb = this.storage(x), yb = this.storage(T * w.rows * 4);
    this.encodeMatmul(rec, yb, xb, w, T);
    try { return await this.readF32(yb, T * w.rows, rec); } finally { xb.destroy(); yb.destroy(); }
  }

  async rmsnorm(x: Float32Array, g: Float32Array, T: number, dim: number, eps: number): Promise<Float32Array> {
    const rec = new Recorder(this.ctx);
    const xb = this.storage(x), gb = this.storage(g), yb = this.storage(T * dim * 4);
    this.encodeRmsnorm(rec, yb, xb, gb, T, dim, eps);
    try { return await this.readF32(yb, T * dim, rec); } finally { xb.destroy(); gb.destroy(); yb.destroy(); }
  }

  /** RoPE of q and k together (k may have fewer heads): returns [q, k] rotated. */
  async rope(q: Float32Array, k: Float32Array, T: number, nHeads: number, nKvHeads: number, headDim: number, cos: Float32Array, sin: Float32Array): Promise<[Float32Array, Float32Array]> {
    const rec = new Recorder(this.ctx);
    const qb = this.storage(q), kb = this.storage(k), cb = this.storage(cos), sb = this.storage(sin);
    this.encodeRope(rec, qb, kb, cb, sb, T, nHeads, nKvHeads, headDim);
    try {
      const qo = await this.readF32(qb, T * nHeads * headDim, rec);
      return [qo, await this.readF32(kb, T * nKvHeads * headDim)];
    } finally { qb.destroy(); kb.destroy(); cb.destroy(); sb.destroy(); }
  }

  /** [x + d, rmsnorm(x + d) ⊙ g] */
  async addRmsnorm(x: Float32Array, d: Float32Array, g: Float32Array, T: number, dim: number, eps: number): Promise<[Float32Array, Float32Array]> {
    const rec = new Recorder(this.ctx);
    const xb = this.storage(x), db = this.storage(d), gb = this.storage(g), yb = this.storage(T * dim * 4);
    this.encodeAddRmsnorm(rec, yb, xb, db, gb, T, dim, eps);
    try {
      const y = await this.readF32(yb, T * dim, rec);
      return [await this.readF32(xb, T * dim), y];
    } finally { xb.destroy(); db.destroy(); gb.destroy(); yb.destroy(); }
  }

  async siluMul(gate: Float32Array, up: Float32Array, n: number): Promise<Float32Array> {
    const rec = new Recorder(this.ctx);
    const gb = this.storage(gate), ub = this.storage(up);
    this.encodeSiluMul(rec, gb, ub, n);
    try { return await this.readF32(gb, n, rec); } finally { gb.destroy(); ub.destroy(); }
  }

  async add(y: Float32Array, x: Float32Array, n: number): Promise<Float32Array> {
    const rec = new Recorder(this.ctx);
    const yb = this.storage(y), xb = this.storage(x);
    this.encodeAdd(rec, yb, xb, n);
    try { return await this.readF32(yb, n, rec); } finally { yb.destroy(); xb.destroy(); }
  }

  /**
   * kvWrite of k, v (T, nKvHeads·headDim) at positions past … past+T−1 of one sequence, then attention of q
   * (T, nHeads·headDim) over it, on a GPU copy of the view's segments (what the TS kernels hold before). Returns
   * the attention output and the arena's bytes afterwards (to compare with the pool after the TS kvWrite).
   */
  async kvWriteAttention(kv: KvView, k: Float32Array, v: Float32Array, q: Float32Array, p: AttentionParams): Promise<{ out: Float32Array; bytes: Uint8Array }> {
    const L = kv.layout;
    let total = 0;
    for (const s of kv.segments) total += s.bytes.length;
    const all = new Uint8Array(total);
    for (let i = 0, o = 0; i < kv.segments.length; o += kv.segments[i].bytes.length, i++) all.set(kv.segments[i].bytes, o);
    const { meta, tables, N } = tokenMeta([{ kv, past: p.past, T: p.T }]);
    const kvb: KvBinding = {
      arenas: [this.storage(all)], perLayer: false, meta: this.storage(meta), tables: this.storage(tables), N, blockSize: L.blockSize,
      ...kvKind(L),
    };
    const kb = this.storage(k), vb = this.storage(v), qb = this.storage(q), ob = this.storage(N * p.nHeads * p.headDim * 4);
    const rec = new Recorder(this.ctx);
    this.encodeKvWrite(rec, kvb, kv.layer, kb, vb, p.nKvHeads, p.headDim);
    this.encodeAttention(rec, kvb, kv.layer, ob, qb, p.nHeads, p.nKvHeads, p.headDim, p.scale);
    try {
      const out = await this.readF32(ob, N * p.nHeads * p.headDim, rec);
      const bytes = new Uint8Array(await this.ctx.read(kvb.arenas[0], total));
      return { out, bytes };
    } finally {
      for (const b of [...kvb.arenas, kvb.meta, kvb.tables, kb, vb, qb, ob]) b.destroy();
    }
  }

  /**
   * Runs a format's registered embed kernel (blocks/): row `row` of w as f32 (w.cols values). For the parity
   * tests of the block families; the forward decodes embedding rows on the CPU.
   */
  async embedRow(w: Weight, row: number): Promise<Float32Array> {
    const reg = formatKernel(w.format)?.embed;
    if (!reg) throw new XverseError("unsupported", `WebGPU: no embed kernel registered for ${w.format}`);
    const g = gpuWeight(this.ctx, w);
    const part = g.parts.find((p) => row >= p.rowStart && row < p.rowStart + p.rows);
    if (!part) throw new XverseError("bad_token", `embedRow: row ${row} is outside the table's ${w.rows} rows`);
    const rec = new Recorder(this.ctx);
    const out = this.storage(w.cols * 4);
    rec.dispatch(this.ctx.pipeline(`embed:${w.format}`, reg.wgsl, reg.entryPoint), params([row - part.rowStart, w.cols, 0, 0]), [part.buffer, out], reg.workgroups(w.cols));
    try { return await this.readF32(out, w.cols, rec); } finally { out.destroy(); }
  }
}
