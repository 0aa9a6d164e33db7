/**
 * The XVERSE forward pass (LLaMA architecture), in paper order:
 *   embed → L × (RMSNorm → attention (RoPE, GQA, causal) → residual → RMSNorm → SwiGLU → residual) → RMSNorm → lm_head
 * Activations are f32; weights are whatever the backend Weight holds (f32, bf16, f16, int8, int4).
 * Scratch buffers are allocated once for the largest (batch × tokens) seen, so decoding allocates nothing.
 */
import type { Backend } from "../backend/backend.js";
import type { XverseConfig } from "../config.js";
import { XverseError } from "../errors.js";
import type { TensorSource } from "../io/source.js";
import { KvPool, type KvPoolOptions } from "../kv/pool.js";
import type { KvSequence } from "../kv/sequence.js";
import { formatBytes, kvLayout, type KvType } from "../kv/layout.js";
import { RopeTables } from "./rope.js";
import { loadWeights, type ModelWeights, type WeightLoadOptions } from "./weights.js";

export interface ForwardOptions {
  /**
   * "last" (default): logits of each sequence's last new token, (B, vocab). "all": every new token, (N, vocab).
   * "none": only fill the cache (a prompt chunk before the last one) — skips lm_head, returns an empty array.
   */
  logits?: "last" | "all" | "none";
  /** Write the logits here instead of a new array (the decode loop reuses one buffer). */
  out?: Float32Array;
}

/** One sequence's share of a batched forward: its new tokens, appended after what its cache holds. */
export interface BatchItem {
  seq: KvSequence;
  tokens: ArrayLike<number>;
}

export interface KvOptions {
  /** Storage type of keys and values (default f16, as llama.cpp). */
  kvType?: KvType;
  /** Tokens per KV block (default 32). */
  kvBlockSize?: number;
  /** Most tokens one sequence may hold (default: max_position_embeddings). */
  ctxSize?: number;
  /** Default byte budget of pools made by createPool() (default: 4 sequences of ctxSize, at most 8 GiB). */
  kvBudget?: number;
}

class Scratch {
  n = 0;
  x = new Float32Array(0); // (N, hidden) residual stream
  xn = new Float32Array(0); // (N, hidden) normed
  q = new Float32Array(0); // (N, nHeads·headDim)
  k = new Float32Array(0); // (N, nKvHeads·headDim)
  v = new Float32Array(0);
  att = new Float32Array(0); // (N, nHeads·headDim)
  proj = new Float32Array(0); // (N, hidden)
  gate = new Float32Array(0); // (N, intermediate)
  up = new Float32Array(0);
  cos = new Float32Array(0); // (T, headDim/2)
  sin = new Float32Array(0);
  pos = new Int32Array(0); // (N)
  last = new Float32Array(0); // (B, hidden)

  ensure(c: XverseConfig, N: number): void {
    if (N <= this.n) return;
    const qd = c.numHeads * c.headDim, kvd = c.numKvHeads * c.headDim;
    this.n = N;
    this.x = new Float32Array(N * c.hiddenSize);
    this.xn = new Float32Array(N * c.hiddenSize);
    this.q = new Float32Array(N * qd);
    this.k = new Float32Array(N * kvd);
    this.v = new Float32Array(N * kvd);
    this.att = new Float32Array(N * qd);
    this.proj = new Float32Array(N * c.hiddenSize);
    this.gate = new Float32Array(N * c.intermediateSize);
    this.up = new Float32Array(N * c.intermediateSize);
    this.cos = new Float32Array(N * (c.headDim / 2));
    this.sin = new Float32Array(N * (c.headDim / 2));
    this.pos = new Int32Array(N);
    this.last = new Float32Array(N * c.hiddenSize);
  }
}

export class XverseModel {
  private readonly s = new Scratch();
  private readonly rope: RopeTables;
  readonly kvType: KvType;
  readonly kvBlockSize: number;
  readonly ctxSize: number;
  readonly kvBudget: number;

  constructor(
    readonly config: XverseConfig,
    readonly weights: ModelWeights,
    readonly backend: Backend,
    kv: KvOptions = {},
  ) {
    this.rope = new RopeTables(config);
    this.kvType = kv.kvType ?? "f16";
    this.kvBlockSize = kv.kvBlockSize ?? 32;
    this.ctxSize = kv.ctxSize ?? config.maxPositionEmbeddings;
    if (!(Number.isInteger(this.ctxSize) && this.ctxSize >= 1)) throw new XverseError("bad_argument", `ctxSize must be a positive integer (got ${this.ctxSize})`);
    // a device backend holds each layer of a pool in one buffer: the default budget stays within them
    const deviceMax = backend.device ? backend.device.maxKvLayerBytes * config.numLayers : Infinity;
    this.kvBudget = kv.kvBudget ?? Math.min(8 * 2 ** 30, 4 * this.ctxSize * this.kvBytesPerToken, deviceMax);
  }

  static fromSource(config: XverseConfig, source: TensorSource, opts: WeightLoadOptions & KvOptions): XverseModel {
    return new XverseModel(config, loadWeights(config, source, opts), opts.backend, opts);
  }

  /** Bytes of keys and values per token at this model's KV type: 2 × layers × kvHeads × headDim × bytes. */
  get kvBytesPerToken(): number {
    const c = this.config;
    return kvLayout(this.kvType, c.numLayers, c.numKvHeads, c.headDim, this.kvBlockSize).bytesPerToken;
  }

  /**
   * One line for people: KV type, bytes per token (the formula's number), context size, and a pool's budget when
   * given. The CLI prints it at load; the server's banner too.
   */
  describeKv(budgetBytes?: number): string {
    const bpt = this.kvBytesPerToken;
    const budget = budgetBytes === undefined ? "" : `, budget ${formatBytes(budgetBytes)} (${Math.floor(budgetBytes / bpt)} tokens, allocated as used)`;
    return `KV cache ${this.kvType}: ${formatBytes(bpt)} per token, context ${this.ctxSize} tokens (${formatBytes(bpt * this.ctxSize)} when full)${budget}`;
  }

  /** A KV pool shared by many sequences (prefix reuse across them), bounded by budgetBytes. */
  createPool(opts: Partial<KvPoolOptions> = {}): KvPool {
    const c = this.config;
    const onSegment = this.backend.prepareKvSegment?.bind(this.backend);
    const dev = this.backend.device;
    // a device backend holds keys and values in its own memory: copy-on-write copies the block there too
    const onCopyBlock = dev ? (p: KvPool, dst: number, src: number) => dev.copyKvBlock(p.segments, p.layout, p.blocksPerSegment, dst, src) : undefined;
    return new KvPool({ type: this.kvType, blockSize: this.kvBlockSize, budgetBytes: this.kvBudget, onSegment, onCopyBlock, ...opts, nLayers: c.numLayers, nKvHeads: c.numKvHeads, headDim: c.headDim });
  }

  /**
   * A private cache for one sequence of up to maxTokens tokens (its own pool, no sharing; freed with it).
   * For caches shared across turns or requests, use createPool() and pool.sequence().
   */
  newCache(maxTokens: number, opts: { type?: KvType } = {}): KvSequence {
    if (!(Number.isInteger(maxTokens) && maxTokens >= 1)) throw new XverseError("bad_argument", `newCache: maxTokens must be an integer ≥ 1 (got ${maxTokens})`);
    const B = Math.min(this.kvBlockSize, maxTokens);
    const type = opts.type ?? this.kvType, c = this.config;
    // one segment of exactly the blocks maxTokens needs
    const exact = Math.ceil(maxTokens / B) * kvLayout(type, c.numLayers, c.numKvHeads, c.headDim, B).blockBytes;
    return this.createPool({ type, blockSize: B, prefixCaching: false, budgetBytes: exact, segmentBytes: exact }).sequence(maxTokens);
  }

  /** Appends tokens to one sequence and returns logits (see ForwardOptions). CPU backends only. */
  forward(tokens: ArrayLike<number>, seq: KvSequence, opts: ForwardOptions = {}): Float32Array {
    return this.forwardBatch([{ seq, tokens }], opts);
  }

  /** forward() on any backend: a device backend (WebGPU) runs it on the device and reads the logits back. */
  forwardAsync(tokens: ArrayLike<number>, seq: KvSequence, opts: ForwardOptions = {}): Promise<Float32Array> {
    return this.forwardBatchAsync([{ seq, tokens }], opts);
  }

  /**
   * forwardBatch() on any backend. On a CPU backend it is the synchronous forward; on a device backend the
   * embedding rows and RoPE angles are made here and every layer runs in one device submit (backend.device).
   */
  async forwardBatchAsync(items: readonly BatchItem[], opts: ForwardOptions = {}): Promise<Float32Array> {
    const dev = this.backend.device;
    if (!dev) return this.forwardBatch(items, opts);
    const c = this.config, s = this.s;
    const H = c.hiddenSize, half = c.headDim / 2;
    const offs = this.embedBatch(items);
    const seqs = [];
    for (let b = 0; b < items.length; b++) {
      const { seq } = items[b];
      const o = offs[b], T = offs[b + 1] - o, past = seq.length;
      this.rope.fill(s.cos.subarray(o * half), s.sin.subarray(o * half), s.pos, o, T, past + T);
      seqs.push({ kv: seq.view(0), past, T });
    }
    const out = await dev.forward({
      hidden: H, intermediate: c.intermediateSize, nHeads: c.numHeads, nKvHeads: c.numKvHeads, headDim: c.headDim,
      vocab: c.vocabSize, eps: c.rmsNormEps, layers: this.weights.layers, norm: this.weights.norm, lmHead: this.weights.lmHead,
      x: s.x, cos: s.cos, sin: s.sin, seqs, logits: opts.logits ?? "last", out: opts.out,
    });
    for (const it of items) it.seq.commit(it.tokens, 0, it.tokens.length);
    return out;
  }

  /**
   * The start of every forward: checks the batch, sizes the scratch, reserves each sequence's new blocks, and
   * looks up the embedding rows into s.x with their positions in s.pos (positions continue each sequence).
   * Returns the token offsets: sequence b's new tokens are rows offs[b] … offs[b+1]−1.
   */
  private embedBatch(items: readonly BatchItem[]): Int32Array {
    const c = this.config, s = this.s, be = this.backend, H = c.hiddenSize;
    s.ensure(c, this.checkBatch(items));
    for (const it of items) it.seq.reserve(it.tokens.length);
    const offs = new Int32Array(items.length + 1);
    for (let b = 0, n = 0; b < items.length; b++) {
      const { seq, tokens } = items[b];
      offs[b] = n;
      for (let t = 0; t < tokens.length; t++, n++) {
        s.pos[n] = seq.length + t;
        be.embedRow(s.x.subarray(n * H, (n + 1) * H), this.weights.embed, tokens[t]);
      }
      offs[b + 1] = n;
    }
    return offs;
  }

  /** Checks a batch (non-empty, token ids in range, KV pool of this model's shape); returns its token count. */
  private checkBatch(items: readonly BatchItem[]): number {
    const c = this.config;
    if (items.length === 0) throw new XverseError("bad_argument", "forward: no sequences given");
    let N = 0;
    for (const it of items) {
      if (it.tokens.length < 1) throw new XverseError("bad_argument", "forward: a sequence has no new tokens");
      if (it.seq.pool.layout.nLayers !== c.numLayers || it.seq.pool.layout.headDim !== c.headDim || it.seq.pool.layout.nKvHeads !== c.numKvHeads) {
        throw new XverseError("bad_argument", "forward: the KV sequence belongs to a pool of another model shape");
      }
      for (let i = 0; i < it.tokens.length; i++) {
        const id = it.tokens[i];
        if (!(Number.isInteger(id) && id >= 0 && id < c.vocabSize)) throw new XverseError("bad_token", `forward: token id ${id} is outside the vocabulary (0 … ${c.vocabSize - 1})`);
      }
      N += it.tokens.length;
    }
    return N;
  }

  /**
   * One forward over several sequences, each with its own number of new tokens (a decode step of running
   * requests plus a chunk of a newcomer's prompt): matmuls run on all N tokens at once, attention per sequence
   * over its own blocks. No padding: positions are each sequence's own (cached length + t).
   */
  forwardBatch(items: readonly BatchItem[], opts: ForwardOptions = {}): Float32Array {
    const c = this.config, be = this.backend, s = this.s;
    if (be.device) {
      throw new XverseError("unsupported", `the ${be.name} backend runs on a device whose results come back asynchronously: call model.forwardAsync / forwardBatchAsync instead of forward / forwardBatch`);
    }
    const B = items.length;
    const offs = this.embedBatch(items), N = offs[B];
    const H = c.hiddenSize, hd = c.headDim;
    const qd = c.numHeads * hd, kvd = c.numKvHeads * hd;

    const x = s.x, xn = s.xn;
    for (let l = 0; l < c.numLayers; l++) {
      const L = this.weights.layers[l];
      // --- attention block ---
      be.rmsnorm(xn, x, L.inputNorm, N, H, c.rmsNormEps);
      be.matmul(s.q, xn, L.q, N); // (N, nHeads·hd)
      be.matmul(s.k, xn, L.k, N); // (N, nKv·hd)
      be.matmul(s.v, xn, L.v, N);
      for (let b = 0; b < B; b++) {
        const { seq } = items[b];
        const o = offs[b], T = offs[b + 1] - o, past = seq.length;
        this.rope.fill(s.cos, s.sin, s.pos, o, T, past + T);
        const qb = s.q.subarray(o * qd, (o + T) * qd);
        const kb = s.k.subarray(o * kvd, (o + T) * kvd);
        be.rope(qb, T, c.numHeads, hd, s.cos, s.sin);
        be.rope(kb, T, c.numKvHeads, hd, s.cos, s.sin);
        const view = seq.view(l);
        be.kvWrite(view, kb, s.v.subarray(o * kvd, (o + T) * kvd), past, T);
        be.attention(s.att.subarray(o * qd, (o + T) * qd), qb, view, {
          T, past, nHeads: c.numHeads, nKvHeads: c.numKvHeads, headDim: hd, scale: 1 / Math.sqrt(hd),
        });
      }
      be.matmul(s.proj, s.att, L.o, N); // (N, hidden)
      be.addInPlace(x, s.proj, N * H);
      // --- SwiGLU block ---
      be.rmsnorm(xn, x, L.postNorm, N, H, c.rmsNormEps);
      be.matmul(s.gate, xn, L.gate, N); // (N, intermediate)
      be.matmul(s.up, xn, L.up, N);
      be.siluMul(s.gate, s.up, N * c.intermediateSize);
      be.matmul(s.proj, s.gate, L.down, N); // (N, hidden)
      be.addInPlace(x, s.proj, N * H);
    }
    for (const it of items) it.seq.commit(it.tokens, 0, it.tokens.length);

    // final norm and the untied lm_head, for the last token of each sequence or for all tokens
    const V = c.vocabSize;
    if (opts.logits === "none") return new Float32Array(0);
    if (opts.logits === "all") {
      be.rmsnorm(xn, x, this.weights.norm, N, H, c.rmsNormEps);
      const out = opts.out ?? new Float32Array(N * V);
      be.matmul(out, xn, this.weights.lmHead, N);
      return out;
    }
    for (let b = 0; b < B; b++) s.last.set(x.subarray((offs[b + 1] - 1) * H, offs[b + 1] * H), b * H);
    be.rmsnorm(xn, s.last, this.weights.norm, B, H, c.rmsNormEps);
    const out = opts.out ?? new Float32Array(B * V);
    be.matmul(out, xn, this.weights.lmHead, B);
    return out;
  }
}
