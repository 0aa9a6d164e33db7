/**
 * The GPU mirror of a KvPool: one storage buffer ("arena") per pool, block b at byte b · blockBytes (the pool's
 * segments are equal-sized runs of blocks, so the same block ids address both). The pool keeps owning block
 * ids, tables and prefix hashes; keys and values live only here (the pool's CPU segments stay unused).
 * The arena grows with the pool's segments (copying what it holds) up to one storage binding.
 */
/// <reference types="@webgpu/types" />
import type { KvLayout, KvSegment, KvView } from "../backend.js";
import { XverseError } from "../../errors.js";
import { USAGE, type GpuContext } from "./context.js";

interface Arena {
  buffer: GPUBuffer;
  bytes: number;
  tmp: GPUBuffer | null;
}

export class KvArenas {
  private readonly arenas = new WeakMap<readonly KvSegment[], Arena>();

  constructor(private readonly ctx: GpuContext) {}

  /** The arena for the pool owning `segments`, grown to cover every segment allocated so far. */
  ensure(segments: readonly KvSegment[], layout: KvLayout, blocksPerSegment: number): Arena {
    let need = 0;
    for (const s of segments) need += s.buffer.byteLength;
    need = Math.max(need, layout.blockBytes);
    let a = this.arenas.get(segments);
    if (a && a.bytes >= need) return a;
    if (need > this.ctx.maxBinding) {
      throw new XverseError("kv_budget", `WebGPU: the KV cache would need ${need} bytes, above the device's largest storage binding (${this.ctx.maxBinding} bytes); lower --kv-budget, --ctx-size or --concurrency`);
    }
    const bytes = Math.min(this.ctx.maxBinding, Math.max(need, a ? 2 * a.bytes : 0));
    const buffer = this.ctx.buffer(bytes, USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST, "kv arena");
    if (a) {
      const enc = this.ctx.device.createCommandEncoder();
      enc.copyBufferToBuffer(a.buffer, 0, buffer, 0, a.bytes);
      this.ctx.device.queue.submit([enc.finish()]);
      a.buffer.destroy();
      a.tmp?.destroy();
    }
    a = { buffer, bytes, tmp: null };
    this.arenas.set(segments, a);
    return a;
  }

  /** Copy-on-write of one block (all layers): src → dst through a one-block staging buffer. */
  copyBlock(segments: readonly KvSegment[], layout: KvLayout, blocksPerSegment: number, dst: number, src: number): void {
    const a = this.ensure(segments, layout, blocksPerSegment);
    const bb = layout.blockBytes;
    a.tmp ??= this.ctx.buffer(bb, USAGE.COPY_SRC | USAGE.COPY_DST, "kv block copy");
    const enc = this.ctx.device.createCommandEncoder();
    enc.copyBufferToBuffer(a.buffer, src * bb, a.tmp, 0, bb);
    enc.copyBufferToBuffer(a.tmp, 0, a.buffer, dst * bb, bb);
    this.ctx.device.queue.submit([enc.finish()]);
  }
}

/**
 * Per new token: its position and the offset of its sequence's block table in the concatenated tables
 * (meta (N, 2) u32), for kvWrite and attention over a ragged batch.
 */
export function tokenMeta(seqs: readonly { kv: KvView; past: number; T: number }[]): { meta: Uint32Array; tables: Int32Array; N: number } {
  let N = 0, nTable = 0;
  for (const s of seqs) { N += s.T; nTable += Math.ceil((s.past + s.T) / s.kv.layout.blockSize); }
  const meta = new Uint32Array(2 * N), tables = new Int32Array(Math.max(1, nTable));
  for (let b = 0, n = 0, to = 0; b < seqs.length; b++) {
    const { kv, past, T } = seqs[b];
    const nb = Math.ceil((past + T) / kv.layout.blockSize);
    tables.set(kv.table.subarray(0, nb), to);
    for (let t = 0; t < T; t++, n++) { meta[2 * n] = past + t; meta[2 * n + 1] = to; }
    to += nb;
  }
  return { meta, tables, N };
}
