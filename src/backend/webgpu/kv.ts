/**
 * The GPU mirror of a KvPool: one storage buffer ("arena") per pool and layer. Block b of layer l sits at byte
 * b · 2 · regionBytes of arena l: that layer's K region then V region, exactly the bytes the CPU layout keeps for
 * (b, l) (backend.ts KvLayout), so the same block ids address both and the KV kernels run unchanged with
 * blockWords = 2 · regionWords and layer 0 (KvBinding.perLayer). Splitting by layer keeps each binding to
 * 1 / nLayers of the cache: 13B's 40 layers at f16 KV (800 KiB per token) fit ~100K tokens under 2 GiB
 * bindings, where one arena would stop at ~2,600. The pool keeps owning block ids, tables and prefix hashes;
 * keys and values live only here (the pool's CPU segments stay unused). Arenas grow with the pool's segments
 * (copying what they hold).
 */
/// <reference types="@webgpu/types" />
import type { KvLayout, KvSegment, KvView } from "../backend.js";
import { XverseError } from "../../errors.js";
import { USAGE, type GpuContext } from "./context.js";

interface Arena {
  /** One buffer per layer. */
  layers: GPUBuffer[];
  /** Bytes of each layer's buffer. */
  bytes: number;
  tmp: GPUBuffer | null;
}

export class KvArenas {
  private readonly arenas = new WeakMap<readonly KvSegment[], Arena>();

  constructor(private readonly ctx: GpuContext) {}

  /** The arenas for the pool owning `segments`, grown to cover every segment allocated so far. */
  ensure(segments: readonly KvSegment[], layout: KvLayout, blocksPerSegment: number): Arena {
    let blocks = 0;
    for (const s of segments) blocks += s.buffer.byteLength / layout.blockBytes;
    const perBlock = 2 * layout.regionBytes; // one layer of one block: K region, V region
    const need = Math.max(1, Math.ceil(blocks)) * perBlock;
    let a = this.arenas.get(segments);
    if (a && a.bytes >= need) return a;
    const max = Math.floor(this.ctx.maxKvLayerBytes / perBlock) * perBlock;
    if (need > max) {
      throw new XverseError("kv_budget", `WebGPU: one layer of the KV cache would need ${need} bytes, above the device's largest storage binding (${max} bytes); lower --kv-budget, --ctx-size or --concurrency`);
    }
    const bytes = Math.min(max, Math.max(need, a ? 2 * a.bytes : 0));
    const layers: GPUBuffer[] = [];
    const enc = this.ctx.device.createCommandEncoder();
    for (let l = 0; l < layout.nLayers; l++) {
      layers.push(this.ctx.buffer(bytes, USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST, `kv arena layer ${l}`));
      if (a) enc.copyBufferToBuffer(a.layers[l], 0, layers[l], 0, a.bytes);
    }
    this.ctx.device.queue.submit([enc.finish()]);
    if (a) {
      for (const b of a.layers) b.destroy();
      a.tmp?.destroy();
    }
    a = { layers, bytes, tmp: null };
    this.arenas.set(segments, a);
    return a;
  }

  /** Copy-on-write of one block (every layer): src → dst through a one-region-pair staging buffer. */
  copyBlock(segments: readonly KvSegment[], layout: KvLayout, blocksPerSegment: number, dst: number, src: number): void {
    const a = this.ensure(segments, layout, blocksPerSegment);
    const pb = 2 * layout.regionBytes;
    a.tmp ??= this.ctx.buffer(pb, USAGE.COPY_SRC | USAGE.COPY_DST, "kv block copy");
    const enc = this.ctx.device.createCommandEncoder();
    for (const buf of a.layers) {
      enc.copyBufferToBuffer(buf, src * pb, a.tmp, 0, pb);
      enc.copyBufferToBuffer(a.tmp, 0, buf, dst * pb, pb);
    }
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
