/**
 * KvPool: the memory for keys and values, in fixed-size blocks (see layout.ts), owned by one model and shared by
 * every sequence on it.
 *
 * - Storage is a list of equal-sized segments (ArrayBuffers of `blocksPerSegment` blocks), allocated only when
 *   the free blocks run out, never beyond `budgetBytes`: memory = blocks actually used, rounded up to a segment.
 *   Block id b lives in segment ⌊b / blocksPerSegment⌋ at byte (b mod blocksPerSegment) · blockBytes.
 * - Every block has a reference count (the sequences whose block table holds it). A full block that has been
 *   computed is registered under its prefix key (prefix-hash.ts); when its count drops to 0 it stays cached, in
 *   LRU order, until a new block is needed and no free one is left.
 * - Allocation order: the free list, then a new segment within the budget, then the least recently released
 *   cached block. Blocks referenced by a live sequence are never taken, so eviction cannot corrupt one.
 */
import type { KvSegment } from "../backend/backend.js";
import { XverseError } from "../errors.js";
import { formatBytes, kvLayout, type KvLayout, type KvType } from "./layout.js";
import { KvSequence } from "./sequence.js";

export interface KvPoolOptions {
  type: KvType;
  nLayers: number;
  nKvHeads: number;
  headDim: number;
  /** Tokens per block (default 32). */
  blockSize?: number;
  /** Most bytes the pool may hold (default: unbounded). */
  budgetBytes?: number;
  /** Target segment size (default 16 MiB; at least one block). */
  segmentBytes?: number;
  /** Register full blocks for prefix reuse (default true). */
  prefixCaching?: boolean;
  /** Called with every new segment before use (Backend.prepareKvSegment). */
  onSegment?: (buffer: ArrayBuffer) => void;
  /**
   * Called after copyBlock copied block src into dst in the pool's memory: a device backend (WebGPU) keeps the
   * keys and values in its own memory and copies the block there too.
   */
  onCopyBlock?: (pool: KvPool, dst: number, src: number) => void;
}

export interface KvPoolStats {
  /** Blocks the budget allows. */
  capacityBlocks: number;
  /** Blocks in allocated segments. */
  allocatedBlocks: number;
  /** Blocks held by live sequences. */
  usedBlocks: number;
  /** Unreferenced blocks kept for prefix reuse. */
  cachedBlocks: number;
  /** Bytes of allocated segments. */
  bytes: number;
  /** Prefix lookups that found / missed a block, and blocks evicted. */
  hits: number;
  misses: number;
  evictions: number;
}

const NO_KEY = "";

export class KvPool {
  readonly layout: KvLayout;
  readonly blockSize: number;
  readonly blocksPerSegment: number;
  readonly capacityBlocks: number;
  readonly prefixCaching: boolean;
  private readonly onSegment?: (buffer: ArrayBuffer) => void;
  private readonly onCopyBlock?: (pool: KvPool, dst: number, src: number) => void;
  readonly segments: KvSegment[] = [];
  /** The segments' ArrayBuffers, in order (what the native kernels receive). */
  readonly buffers: ArrayBuffer[] = [];

  private refs = new Int32Array(0);
  private keys: string[] = []; // per block: its prefix key while registered, else NO_KEY
  private parents: string[] = []; // per registered block: the key it chains from
  private blockTokens = new Int32Array(0); // (blocks, blockSize): tokens of registered blocks, for verification
  private readonly free: number[] = [];
  private readonly lru = new Map<number, true>(); // unreferenced registered blocks, oldest first
  private readonly index = new Map<string, number>();
  private used = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;

  constructor(opts: KvPoolOptions) {
    this.blockSize = opts.blockSize ?? 32;
    this.layout = kvLayout(opts.type, opts.nLayers, opts.nKvHeads, opts.headDim, this.blockSize);
    const budget = opts.budgetBytes ?? Infinity;
    if (!(budget > 0)) throw new XverseError("bad_argument", `KV cache budget must be positive (got ${budget})`);
    this.capacityBlocks = budget === Infinity ? 2 ** 31 - 1 : Math.floor(budget / this.layout.blockBytes);
    if (this.capacityBlocks < 1) {
      throw new XverseError("kv_budget", `KV cache budget ${formatBytes(budget)} is smaller than one block (${formatBytes(this.layout.blockBytes)} = ${this.blockSize} tokens); raise it (--kv-budget)`);
    }
    const seg = Math.max(1, Math.floor((opts.segmentBytes ?? 16 * 2 ** 20) / this.layout.blockBytes));
    this.blocksPerSegment = Math.min(seg, this.capacityBlocks, Math.floor(2 ** 30 / this.layout.blockBytes) || 1);
    this.prefixCaching = opts.prefixCaching ?? true;
    this.onSegment = opts.onSegment;
    this.onCopyBlock = opts.onCopyBlock;
  }

  /** A new, empty sequence of at most maxTokens tokens. Release it when done. */
  sequence(maxTokens = Infinity): KvSequence {
    return new KvSequence(this, maxTokens);
  }

  get budgetBytes(): number {
    return this.capacityBlocks * this.layout.blockBytes;
  }

  stats(): KvPoolStats {
    const allocated = this.allocatedBlocks();
    return {
      capacityBlocks: this.capacityBlocks, allocatedBlocks: allocated, usedBlocks: this.used, cachedBlocks: this.lru.size,
      bytes: this.bytes(), hits: this.hits, misses: this.misses, evictions: this.evictions,
    };
  }

  bytes(): number {
    let n = 0;
    for (const s of this.segments) n += s.buffer.byteLength;
    return n;
  }

  /** Drops every cached (unreferenced) block: the next prompts start cold. */
  clearPrefixCache(): void {
    for (const b of [...this.lru.keys()]) {
      this.unregister(b);
      this.lru.delete(b);
      this.free.push(b);
    }
  }

  // --- used by KvSequence ---

  /** A block with reference count 1, its contents undefined. */
  allocate(): number {
    let b = this.free.pop();
    if (b === undefined && this.allocatedBlocks() < this.capacityBlocks) b = this.grow();
    if (b === undefined) {
      const oldest = this.lru.keys().next();
      if (oldest.done) {
        throw new XverseError("kv_budget", `KV cache full: all ${this.capacityBlocks} blocks (${formatBytes(this.budgetBytes)}, ${this.capacityBlocks * this.blockSize} tokens) are held by running sequences; raise the KV budget (--kv-budget), lower --concurrency or --ctx-size, or use --kv-type q8_0`);
      }
      b = oldest.value;
      this.lru.delete(b);
      this.unregister(b);
      this.evictions++;
    }
    this.refs[b] = 1;
    this.used++;
    return b;
  }

  retain(b: number): void {
    if (this.refs[b] === 0) {
      this.lru.delete(b);
      this.used++;
    }
    this.refs[b]++;
  }

  release(b: number): void {
    if (this.refs[b] <= 0) throw new Error(`KvPool: block ${b} released more often than retained`);
    if (--this.refs[b] > 0) return;
    this.used--;
    if (this.keys[b] !== NO_KEY) this.lru.set(b, true);
    else this.free.push(b);
  }

  refCount(b: number): number {
    return this.refs[b];
  }

  isRegistered(b: number): boolean {
    return this.keys[b] !== NO_KEY;
  }

  /** Records a full, computed block under its prefix key (first writer wins; a duplicate stays private). */
  register(b: number, key: string, parent: string | null, tokens: ArrayLike<number>, from: number): void {
    if (!this.prefixCaching || this.index.has(key) || this.keys[b] !== NO_KEY) return;
    this.index.set(key, b);
    this.keys[b] = key;
    this.parents[b] = parent ?? NO_KEY;
    const B = this.blockSize;
    for (let i = 0; i < B; i++) this.blockTokens[b * B + i] = tokens[from + i];
  }

  /** Removes b from the prefix index (its contents are about to change). */
  unregister(b: number): void {
    const k = this.keys[b];
    if (k === NO_KEY) return;
    this.index.delete(k);
    this.keys[b] = NO_KEY;
    this.parents[b] = NO_KEY;
  }

  /** The cached block for this key whose parent and tokens match, or −1. Does not retain it. */
  lookup(key: string, parent: string | null, tokens: ArrayLike<number>, from: number): number {
    const b = this.index.get(key);
    if (b === undefined) { this.misses++; return -1; }
    const B = this.blockSize;
    let same = this.parents[b] === (parent ?? NO_KEY);
    for (let i = 0; same && i < B; i++) same = this.blockTokens[b * B + i] === tokens[from + i];
    if (!same) { this.misses++; return -1; }
    this.hits++;
    return b;
  }

  /** Copies block src's keys and values (all layers) into block dst. */
  copyBlock(dst: number, src: number): void {
    const bb = this.layout.blockBytes;
    const [ss, so] = this.locate(src), [ds, dof] = this.locate(dst);
    this.segments[ds].bytes.set(this.segments[ss].bytes.subarray(so, so + bb), dof);
    this.onCopyBlock?.(this, dst, src);
  }

  /** (segment index, byte offset) of block b. */
  locate(b: number): [number, number] {
    const s = Math.floor(b / this.blocksPerSegment);
    return [s, (b - s * this.blocksPerSegment) * this.layout.blockBytes];
  }

  private allocatedBlocks(): number {
    return Math.min(this.segments.length * this.blocksPerSegment, this.capacityBlocks);
  }

  /** Allocates the next segment; returns its first block and frees the rest. */
  private grow(): number {
    const first = this.segments.length * this.blocksPerSegment;
    const n = Math.min(this.blocksPerSegment, this.capacityBlocks - first);
    const buffer = new ArrayBuffer(n * this.layout.blockBytes);
    this.onSegment?.(buffer);
    this.segments.push({ buffer, bytes: new Uint8Array(buffer), f32: new Float32Array(buffer), u16: new Uint16Array(buffer), i8: new Int8Array(buffer) });
    this.buffers.push(buffer);
    const total = first + n;
    if (this.refs.length < total) {
      const cap = Math.max(total, this.refs.length * 2);
      const refs = new Int32Array(cap);
      refs.set(this.refs);
      this.refs = refs;
      const toks = new Int32Array(cap * this.blockSize);
      toks.set(this.blockTokens);
      this.blockTokens = toks;
    }
    for (let b = this.keys.length; b < total; b++) { this.keys.push(NO_KEY); this.parents.push(NO_KEY); }
    for (let b = total - 1; b > first; b--) this.free.push(b);
    return first;
  }
}
