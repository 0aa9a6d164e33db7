/**
 * KvSequence: one sequence's view of the pool — its block table (block ids in token order), the token ids it
 * holds, and its length. Callers hold sequences, never raw arrays; the model appends through reserve/commit and
 * attention reads the blocks in place through `table`.
 *
 * Writes only ever touch a block this sequence owns alone and that is not in the prefix index: a shared or
 * registered block is copied first (copy-on-write) or, when only the index holds it, unregistered.
 */
import type { KvView } from "../backend/backend.js";
import { XverseError } from "../errors.js";
import type { KvPool } from "./pool.js";
import { blockKey } from "./prefix-hash.js";

export class KvSequence {
  /** Block ids, token order; entries [0, blockCount) are valid. */
  table = new Int32Array(4);
  blockCount = 0;
  /** Tokens whose keys and values are stored. */
  length = 0;
  /** Token ids of positions [0, length). */
  private toks = new Int32Array(64);
  /** Prefix keys of the leading full blocks this sequence has hashed. */
  private readonly keys: string[] = [];
  private released = false;

  constructor(
    readonly pool: KvPool,
    /** Most tokens this sequence may hold (the context size): beyond it forward fails with context_full. */
    readonly maxTokens: number,
  ) {
    if (!(maxTokens >= 1)) throw new XverseError("bad_argument", `KV sequence needs maxTokens ≥ 1 (got ${maxTokens})`);
  }

  /** The token ids stored, [0, length). */
  get tokens(): Int32Array {
    return this.toks.subarray(0, this.length);
  }

  /** Layer l of this sequence as the kernels see it (valid until the next reserve). */
  view(layer: number): KvView {
    const p = this.pool;
    return { layout: p.layout, blocksPerSegment: p.blocksPerSegment, segments: p.segments, buffers: p.buffers, table: this.table, layer };
  }

  /** Bytes of the blocks this sequence references (shared blocks counted in full). */
  bytes(): number {
    return this.blockCount * this.pool.layout.blockBytes;
  }

  /**
   * Keeps the longest cached prefix of `ids` and returns its length: first the tokens this sequence already
   * holds (a chat's earlier turns), then, at a block boundary, full blocks other sequences left in the pool.
   * At most ids.length − 1 tokens are kept, so the caller always computes at least one token (its logits).
   */
  reuse(ids: ArrayLike<number>): number {
    this.check();
    const limit = ids.length - 1;
    let common = 0;
    const n = Math.min(this.length, limit);
    while (common < n && this.toks[common] === ids[common]) common++;
    this.truncate(common);
    if (!this.pool.prefixCaching) return this.length;
    const B = this.pool.blockSize;
    while (this.length % B === 0 && this.length + B <= limit) {
      const j = this.length / B;
      const parent = j > 0 ? this.keys[j - 1] : null;
      const key = blockKey(parent, ids, this.length, B);
      const b = this.pool.lookup(key, parent, ids, this.length);
      if (b < 0) break;
      this.pool.retain(b);
      this.push(b);
      this.keys[j] = key;
      this.setTokens(ids, 0, this.length, B);
      this.length += B;
    }
    return this.length;
  }

  /**
   * Makes room for n more tokens at positions [length, length + n): allocates blocks and makes the partly
   * filled last block private. Throws context_full past maxTokens and kv_budget when the pool is exhausted.
   */
  reserve(n: number): void {
    this.check();
    const end = this.length + n;
    if (end > this.maxTokens) {
      throw new XverseError("context_full", `the sequence would hold ${end} tokens (${this.length} cached + ${n} new), above its context size of ${this.maxTokens}; shorten the prompt or raise --ctx-size`);
    }
    const B = this.pool.blockSize;
    if (this.length % B !== 0) this.makePrivate(Math.floor(this.length / B));
    const need = Math.ceil(end / B);
    while (this.blockCount < need) this.push(this.pool.allocate());
  }

  /** Records that the n tokens `ids[from … from+n)` now have keys and values at [length, length + n). */
  commit(ids: ArrayLike<number>, from: number, n: number): void {
    this.check();
    const B = this.pool.blockSize;
    const start = this.length;
    if (Math.ceil((start + n) / B) > this.blockCount) throw new Error("KvSequence.commit: reserve() was not called");
    this.setTokens(ids, from, start, n);
    this.length = start + n;
    // register blocks that just became full
    for (let j = Math.floor(start / B); j < Math.floor(this.length / B); j++) {
      const parent = j > 0 ? this.keys[j - 1] : null;
      const key = blockKey(parent, this.toks, j * B, B);
      this.keys[j] = key;
      this.pool.register(this.table[j], key, parent, this.toks, j * B);
    }
  }

  /** Forgets everything after the first n tokens; blocks past them go back to the pool. */
  truncate(n: number): void {
    this.check();
    if (!(Number.isInteger(n) && n >= 0 && n <= this.length)) {
      throw new XverseError("bad_argument", `KvSequence.truncate(${n}): length is ${this.length}`);
    }
    const B = this.pool.blockSize;
    const keep = Math.ceil(n / B);
    while (this.blockCount > keep) this.pool.release(this.table[--this.blockCount]);
    this.keys.length = Math.min(this.keys.length, Math.floor(n / B));
    this.length = n;
  }

  /** Gives every block back to the pool (full computed blocks stay cached for prefix reuse). Idempotent. */
  release(): void {
    if (this.released) return;
    this.truncate(0);
    this.released = true;
  }

  get isReleased(): boolean {
    return this.released;
  }

  private check(): void {
    if (this.released) throw new XverseError("bad_argument", "this KV sequence was released; start a new one");
  }

  private push(b: number): void {
    if (this.blockCount === this.table.length) {
      const t = new Int32Array(this.table.length * 2);
      t.set(this.table);
      this.table = t;
    }
    this.table[this.blockCount++] = b;
  }

  private setTokens(ids: ArrayLike<number>, from: number, at: number, n: number): void {
    if (at + n > this.toks.length) {
      const t = new Int32Array(Math.max(at + n, this.toks.length * 2));
      t.set(this.toks.subarray(0, this.length));
      this.toks = t;
    }
    for (let i = 0; i < n; i++) this.toks[at + i] = ids[from + i];
  }

  /** Block j is about to be written: copy it if another sequence holds it, drop its key if only cached. */
  private makePrivate(j: number): void {
    const b = this.table[j];
    if (this.pool.refCount(b) > 1) {
      const c = this.pool.allocate();
      this.pool.copyBlock(c, b);
      this.pool.release(b);
      this.table[j] = c;
    } else if (this.pool.isRegistered(b)) {
      this.pool.unregister(b);
    }
  }
}
