/**
 * The narrow kernel interface the model talks to. Activations are always f32; weights come in several formats.
 * Every fast implementation (native/) has a TypeScript twin (backend/ts/) that is the spec, and a parity test.
 */

/** How a 2-D weight matrix [rows = out_features, cols = in_features] is stored. */
export type WeightFormat =
  | "f32" // data: Float32Array (rows*cols)
  | "bf16" // data: Uint16Array (rows*cols), raw bfloat16 bits
  | "f16" // data: Uint16Array (rows*cols), raw IEEE half bits
  | "q8_row" // data: Int8Array (rows*cols); scales: Float32Array (rows); w = q * scale[row]
  | "q4_row" // data: Uint8Array (rows*cols/2) packed int4; scales: Float32Array (rows)
  | "q4_group"; // data: Uint8Array (rows*cols/2) packed int4; scales: Float32Array (rows*cols/groupSize)

/**
 * int4 packing (q4_row, q4_group): byte j of a row holds columns 2j (low nibble) and 2j+1 (high nibble),
 * each a two's-complement value in [-8, 7]; symmetric quantizers use [-7, 7].
 */
export interface Weight {
  format: WeightFormat;
  rows: number;
  cols: number;
  data: Float32Array | Uint16Array | Int8Array | Uint8Array;
  scales?: Float32Array;
  groupSize?: number;
  /** Backend-private state (e.g. a repacked native buffer), created by Backend.prepareWeight. */
  handle?: unknown;
}

export interface AttentionParams {
  /** Number of new query tokens. */
  T: number;
  /** Tokens already in the cache before these T; keys 0 … past+T−1 are valid. */
  past: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  /** Usually 1/sqrt(headDim). */
  scale: number;
  /** Optional (past+T): 0 marks a padded key no query may attend to (left-padded batches). */
  keyMask?: Uint8Array | null;
}

export interface Backend {
  readonly name: string;
  /** Optional one-time conversion of a weight at load (repacking, pinning). Returns the weight to use. */
  prepareWeight?(w: Weight): Weight;
  /** y (T, w.rows) = x (T, w.cols) · Wᵀ */
  matmul(y: Float32Array, x: Float32Array, w: Weight, T: number): void;
  /** y (T, dim) = x / sqrt(mean(x²) + eps) ⊙ weight; y may alias x. */
  rmsnorm(y: Float32Array, x: Float32Array, weight: Float32Array, T: number, dim: number, eps: number): void;
  /**
   * Rotate-half RoPE in place. x (T, nHeads, headDim); cos, sin (T, headDim/2), row t for token t.
   * For each head: [a | b] → [a·cos − b·sin | b·cos + a·sin].
   */
  rope(x: Float32Array, T: number, nHeads: number, headDim: number, cos: Float32Array, sin: Float32Array): void;
  /**
   * Causal attention with GQA. q (T, nHeads, headDim); k, v (≥ past+T, nKvHeads, headDim) — the cache of one
   * sequence and layer, already holding these T keys; out (T, nHeads, headDim). Query t sees keys 0 … past+t
   * whose keyMask is not 0. Softmax in f32. Query head h uses kv head floor(h / (nHeads / nKvHeads)).
   */
  attention(out: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array, p: AttentionParams): void;
  /** gate (n) = silu(gate) ⊙ up */
  siluMul(gate: Float32Array, up: Float32Array, n: number): void;
  /** y (n) += x */
  addInPlace(y: Float32Array, x: Float32Array, n: number): void;
}
