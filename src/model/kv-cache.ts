/**
 * The KV cache a caller owns: per layer, keys and values after RoPE for `batch` sequences of up to
 * `maxTokens` tokens. All rows of a batch advance together (left padding keeps them aligned).
 */
import { XverseError } from "../errors.js";

export class KVCache {
  /** Per layer: (batch, maxTokens, nKvHeads, headDim). */
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  /** (batch, maxTokens): 0 marks a padded position no query may attend to. */
  readonly keyMask: Uint8Array;
  /** Tokens stored per sequence. */
  length = 0;

  constructor(
    readonly nLayers: number,
    readonly batch: number,
    readonly maxTokens: number,
    readonly nKvHeads: number,
    readonly headDim: number,
  ) {
    if (!(maxTokens >= 1 && batch >= 1)) throw new XverseError("bad_argument", `KV cache needs maxTokens ≥ 1 and batch ≥ 1 (got ${maxTokens}, ${batch})`);
    const per = batch * maxTokens * nKvHeads * headDim;
    this.k = Array.from({ length: nLayers }, () => new Float32Array(per));
    this.v = Array.from({ length: nLayers }, () => new Float32Array(per));
    this.keyMask = new Uint8Array(batch * maxTokens);
  }

  /** Floats per sequence per layer. */
  get rowStride(): number {
    return this.maxTokens * this.nKvHeads * this.headDim;
  }

  /** Forget everything after the first n tokens (reuse a shared prompt prefix). */
  truncate(n: number): void {
    if (!(n >= 0 && n <= this.length)) throw new XverseError("bad_argument", `KVCache.truncate(${n}): length is ${this.length}`);
    this.length = n;
  }

  /** Bytes held by the cache. */
  bytes(): number {
    return this.nLayers * 2 * this.batch * this.rowStride * 4 + this.keyMask.byteLength;
  }
}
