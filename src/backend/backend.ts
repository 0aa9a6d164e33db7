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
  | "q4_group" // data: Uint8Array (rows*cols/2) packed int4; scales: Float32Array (rows*cols/groupSize)
  | "q8_group" // data: Int8Array (rows*cols); scales: Float32Array (rows*cols/groupSize) (GPTQ / AWQ 8-bit)
  // GGUF block types, named as GGUF names them: data is a Uint8Array of rows × (cols / values) ggml blocks exactly
  // as stored in the file (values 32 for the legacy types, 256 for the K-quants; cols must be a multiple); no
  // scales. W = ggml's dequantization of the blocks (backend/ts/blocks.ts is the spec).
  | "q4_0" | "q4_1" | "q5_0" | "q5_1" | "q8_0" | "q2_k" | "q3_k" | "q4_k" | "q5_k" | "q6_k";

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
  /**
   * q4_group / q8_group only, optional (GPTQ / AWQ zero points): one f32 per scale, added per group, so
   * w = q·scale + min. A zero point z of unsigned u is stored as q = u − 8 (int8: u − 128) and min = scale·(8 − z)
   * (int8: scale·(128 − z)); symmetric files have min 0 everywhere and leave this out.
   */
  mins?: Float32Array;
  /**
   * q4_group / q8_group only, optional (GPTQ desc_act): a permutation of 0 … cols−1; stored column j multiplies
   * input column perm[j], so y[t, r] = Σ_j W[r, j] · x[t, perm[j]]. The loader sorts columns by group so every
   * group is a contiguous run of groupSize stored columns.
   */
  perm?: Int32Array;
  /**
   * "f32": every kernel keeps this weight's activations in f32 (GPTQ / AWQ checkpoints: their reference is f32 math
   * on the dequantized weights, and int8-rounded activations move the logits by ~5e-2 and can change greedy tokens).
   * Absent: a backend may quantize activations (int8 per 32, as llama.cpp does) where that is faster.
   */
  activations?: "f32";
  /** Backend-private state (e.g. a repacked native buffer), created by Backend.prepareWeight. */
  handle?: unknown;
}

/** How keys and values are stored in the KV cache (see kv/layout.ts for the byte layout). */
export type KvType = "f32" | "f16" | "q8_0";

/**
 * The byte layout of one KV block: `blockSize` tokens × every layer; per layer a K region then a V region, each
 * head-major (nKvHeads, blockSize, headDim); q8_0 regions hold int8 values then f16 scales (one per `group`).
 */
export interface KvLayout {
  readonly type: KvType;
  readonly nLayers: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly blockSize: number;
  /** q8_0: values per scale; 0 otherwise. */
  readonly group: number;
  /** Bytes of one K (or V) region: one layer of one block. */
  readonly regionBytes: number;
  /** q8_0: byte offset of the scales inside a region. */
  readonly scaleOffset: number;
  /** Bytes of one block (all layers, K and V). */
  readonly blockBytes: number;
  /** 2 × layers × kvHeads × headDim × bytes per element. */
  readonly bytesPerToken: number;
}

/** One segment of KV memory and its typed views. */
export interface KvSegment {
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly f32: Float32Array;
  readonly u16: Uint16Array;
  readonly i8: Int8Array;
}

/**
 * One sequence's keys and values for one layer, in place: token s lives in block table[⌊s / blockSize⌋], row
 * s mod blockSize. Block b is in segments[⌊b / blocksPerSegment⌋] at byte (b mod blocksPerSegment) · blockBytes.
 */
export interface KvView {
  readonly layout: KvLayout;
  readonly blocksPerSegment: number;
  readonly segments: readonly KvSegment[];
  /** The segments' ArrayBuffers (what native code receives). */
  readonly buffers: readonly ArrayBuffer[];
  /** Block ids in token order. */
  readonly table: Int32Array;
  readonly layer: number;
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
}

/** One layer's weights as the model holds them (model/weights.ts LayerWeights). */
export interface DeviceLayer {
  inputNorm: Float32Array;
  q: Weight; k: Weight; v: Weight; o: Weight;
  postNorm: Float32Array;
  gate: Weight; up: Weight; down: Weight;
}

/**
 * A whole forward for a device backend (WebGPU): the model embeds rows and computes RoPE angles on the CPU, the
 * device runs every layer with activations kept on it and reads back only the logits.
 */
export interface DeviceForwardRequest {
  hidden: number;
  intermediate: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  vocab: number;
  eps: number;
  layers: readonly DeviceLayer[];
  norm: Float32Array;
  lmHead: Weight;
  /** (N, hidden) embedded rows of every new token, sequences one after another. */
  x: Float32Array;
  /** (N, headDim/2) RoPE angles of every new token. */
  cos: Float32Array;
  sin: Float32Array;
  /** Per sequence: its KV view (any layer), tokens already cached, and its new token count. Reserved already. */
  seqs: readonly { kv: KvView; past: number; T: number }[];
  logits: "last" | "all" | "none";
  out?: Float32Array;
}

/** What a device backend adds: an asynchronous whole forward, and the KV block copy behind copy-on-write. */
export interface DeviceForward {
  /** Most bytes one layer of a KV pool may take on the device (WebGPU: one storage binding per layer, kv.ts). */
  readonly maxKvLayerBytes: number;
  forward(req: DeviceForwardRequest): Promise<Float32Array>;
  /** Copies block src to block dst (all layers) in the device's mirror of the pool that owns `segments`. */
  copyKvBlock(segments: readonly KvSegment[], layout: KvLayout, blocksPerSegment: number, dst: number, src: number): void;
}

export interface Backend {
  readonly name: string;
  /** Optional: what runs, for statistics lines (WebGPU: the adapter and the features it uses). */
  readonly label?: string;
  /**
   * Present on device backends (WebGPU): the model must call forwardAsync / forwardBatchAsync, which run the
   * whole forward through it; the synchronous kernels below then throw.
   */
  readonly device?: DeviceForward;
  /** Optional one-time conversion of a weight at load (repacking, pinning). Returns the weight to use. */
  prepareWeight?(w: Weight): Weight;
  /**
   * Optional: called once for every new KV segment before it is written (the native backend asks Linux for huge
   * pages there, so filling the cache faults per 2 MiB instead of per 4 KiB).
   */
  prepareKvSegment?(buffer: ArrayBuffer): void;
  /**
   * out (w.cols) = row `row` of W in f32: the embedding lookup, so a quantized token table is decoded one row at
   * a time and never widened whole.
   */
  embedRow(out: Float32Array, w: Weight, row: number): void;
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
   * Stores T tokens' keys and values at positions start … start+T−1 of the view (converting to its KV type:
   * f16 rounds to nearest even, q8_0 quantizes each group with d = amax/127 as llama.cpp's Q8_0).
   * k, v (T, nKvHeads·headDim) token-major, after RoPE. The blocks must already be reserved.
   */
  kvWrite(kv: KvView, k: Float32Array, v: Float32Array, start: number, T: number): void;
  /**
   * Causal attention with GQA over the paged cache, read in place. q (T, nHeads, headDim); kv holds keys
   * 0 … past+T−1 (these T included); out (T, nHeads, headDim). Query t sees keys 0 … past+t. Softmax in f32.
   * Query head h uses kv head floor(h / (nHeads / nKvHeads)).
   */
  attention(out: Float32Array, q: Float32Array, kv: KvView, p: AttentionParams): void;
  /** gate (n) = silu(gate) ⊙ up */
  siluMul(gate: Float32Array, up: Float32Array, n: number): void;
  /** y (n) += x */
  addInPlace(y: Float32Array, x: Float32Array, n: number): void;
}
