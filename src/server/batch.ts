/**
 * Batched decoding for the server: every active request's next token comes out of ONE forward pass of batch B
 * (the weights are read once per step for all of them — the point of batching on memory-bound hardware).
 *
 * Rows of a batched KV cache advance together, but requests arrive and leave at any time. So the shared cache
 * is repacked whenever membership changes: each row's real tokens are right-aligned at the same end slot, the
 * slots before them masked out (keyMask 0, as left padding). Positions come from the mask (cumsum − 1), and
 * keys are stored after RoPE, so moving a row's K/V to other slots changes nothing it computes. A newcomer is
 * prefilled alone in its own cache and then copied in; a finished or aborted row is dropped at the next repack,
 * which also shrinks the cache to what the remaining rows need — so a request's KV memory is freed when it ends.
 *
 * `generate()` below keeps generate.ts's contract (tokens with text deltas and logprobs; eos, stop strings,
 * max tokens, abort; a logits hook), so the engine can use either.
 */
import type { GeneratedToken, GenerateOptions, GenerateResult, FinishReason } from "../generate/generate.js";
import { applyChain, argmax, processorChain, sample, type LogitsProcessor } from "../generate/processors.js";
import { Rng } from "../generate/rng.js";
import { StopMatcher } from "../generate/stop.js";
import { XverseError } from "../errors.js";
import { KVCache } from "../model/kv-cache.js";
import type { XverseModel } from "../model/xverse.js";
import type { StreamDecoder, Tokenizer } from "../tokenizer/types.js";
import { logSumExp } from "./logprobs.js";

/** Prompt tokens prefilled per loop turn, across all newcomers. */
export const PREFILL_CHUNK = 256;

type Item = { token: GeneratedToken } | { end: GenerateResult };

class Seq {
  readonly ids: number[];
  readonly out: number[] = [];
  /** Tokens of this sequence in the KV cache (its real, unmasked slots). */
  len = 0;
  /** Where its K/V live: its own prefill cache (row 0) until merged, then the group's row `row`. */
  cache: KVCache | null = null;
  row = 0;
  logits: Float32Array;
  /** The processors' scratch copy of the logits (one per request, not one per token). */
  readonly work: Float32Array;
  done = false;
  text = "";
  finish: FinishReason = "length";
  readonly chain: LogitsProcessor[];
  readonly sampling: boolean;
  readonly rng: Rng;
  readonly eos: Set<number>;
  readonly decoder: StreamDecoder;
  readonly stops: StopMatcher;
  private readonly items: Item[] = [];
  private wake: (() => void) | null = null;

  constructor(readonly prompt: readonly number[], readonly opts: GenerateOptions, tok: Tokenizer, V: number) {
    this.ids = [...prompt];
    this.logits = new Float32Array(V);
    this.work = new Float32Array(V);
    this.sampling = opts.greedy === true ? false : opts.greedy === false || opts.temperature !== undefined || opts.topK !== undefined || opts.topP !== undefined;
    this.chain = processorChain({ repetitionPenalty: opts.repetitionPenalty, temperature: opts.temperature, topK: opts.topK, topP: opts.topP, sample: this.sampling });
    this.rng = new Rng(opts.seed ?? Date.now());
    this.eos = new Set(opts.eosTokenIds ?? (tok.eosId !== null ? [tok.eosId] : []));
    this.decoder = tok.streamDecoder({ skipSpecialTokens: true });
    this.stops = new StopMatcher(opts.stopStrings ?? []);
  }

  get maxNew(): number {
    return this.opts.maxNewTokens ?? 256;
  }

  /** Tokens it may still feed through the model (the last sampled token is never fed). */
  get remaining(): number {
    return Math.max(1, this.maxNew - this.out.length);
  }

  push(item: Item): void {
    this.items.push(item);
    this.wake?.();
  }

  async next(): Promise<Item> {
    while (!this.items.length) await new Promise<void>((r) => (this.wake = r));
    this.wake = null;
    return this.items.shift()!;
  }
}

export class BatchDecoder {
  private readonly waiting: Seq[] = [];
  private rows: Seq[] = [];
  private cache: KVCache | null = null;
  private running = false;
  /** Largest batch one forward pass has run (for tests and /health). */
  maxBatchSeen = 0;

  constructor(private readonly model: XverseModel, private readonly tok: Tokenizer) {}

  get active(): number {
    return this.rows.length + this.waiting.length;
  }

  async *generate(promptIds: readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerateResult> {
    if (promptIds.length === 0) throw new XverseError("bad_argument", "generate: the prompt is empty (give at least one token, e.g. BOS)");
    const seq = new Seq(promptIds, opts, this.tok, this.model.config.vocabSize);
    if (seq.sampling && opts.temperature === 0) throw new XverseError("bad_argument", "temperature 0 means greedy: pass greedy instead");
    this.waiting.push(seq);
    if (!this.running) void this.loop();
    try {
      for (;;) {
        const item = await seq.next();
        if ("end" in item) return item.end;
        yield item.token;
      }
    } finally {
      // the consumer stopped early (e.g. a finished tool call): the row leaves at the next step
      if (!seq.done) { seq.done = true; seq.finish = "abort"; }
    }
  }

  private async loop(): Promise<void> {
    this.running = true;
    const V = this.model.config.vocabSize;
    let out = new Float32Array(0);
    try {
      while (this.rows.length || this.waiting.length) {
        // 1. newcomers: prefill alone, in chunks of at most PREFILL_CHUNK tokens per turn, so a long prompt
        //    delays the running requests' next token by one chunk, not by the whole prompt. The last chunk's
        //    logits are the newcomer's first step's.
        const fresh: Seq[] = [];
        let budget = PREFILL_CHUNK;
        for (const s of [...this.waiting]) {
          if (s.opts.signal?.aborted || s.done) {
            this.waiting.splice(this.waiting.indexOf(s), 1);
            s.done = true;
            s.finish = "abort";
            this.end(s);
            continue;
          }
          if (budget <= 0) continue;
          s.cache ??= this.model.newCache(s.prompt.length);
          const n = Math.min(budget, s.prompt.length - s.len);
          this.model.forward(s.prompt.slice(s.len, s.len + n), s.cache, { out: s.logits });
          s.len += n;
          budget -= n;
          if (s.len === s.prompt.length) {
            this.waiting.splice(this.waiting.indexOf(s), 1);
            s.row = 0;
            fresh.push(s);
          }
        }
        // 2. every row picks its next token from its logits
        const all = [...this.rows, ...fresh.filter((s) => !s.done)];
        for (const s of all) this.step(s);
        // 3. repack when membership changed, then one batched forward of the last tokens
        const live = all.filter((s) => !s.done);
        for (const s of all) if (s.done) this.end(s);
        if (live.length !== this.rows.length || fresh.length) this.repack(live);
        if (live.length) {
          const B = live.length;
          if (out.length < B * V) out = new Float32Array(B * V);
          const o = out.subarray(0, B * V);
          this.model.forward(live.map((s) => s.ids[s.ids.length - 1]), this.cache!, { batch: B, out: o });
          this.maxBatchSeen = Math.max(this.maxBatchSeen, B);
          live.forEach((s, b) => { s.logits.set(o.subarray(b * V, (b + 1) * V)); s.len++; });
        }
        // let messages in (new jobs, aborts) and consumers forward their tokens
        await new Promise<void>((r) => setImmediate(r));
      }
    } catch (e) {
      // a kernel failure fails every request in the batch, not the worker
      for (const s of [...this.rows, ...this.waiting.splice(0)]) s.push({ end: { finishReason: "abort", ids: s.out, text: s.text + `\n[error: ${(e as Error).message}]`, promptTokens: s.prompt.length } });
      this.rows = [];
      this.cache = null;
    } finally {
      this.running = false;
    }
  }

  /** One token for one row: generate.ts's loop body (hook → processors → pick → eos / stop / length). */
  private step(s: Seq): void {
    if (s.done) return;
    if (s.opts.signal?.aborted) { s.done = true; s.finish = "abort"; return; }
    if (s.out.length >= s.maxNew) { s.done = true; s.finish = "length"; return; }
    s.opts.logitsHook?.(s.ids, s.logits);
    const lse = logSumExp(s.logits);
    s.work.set(s.logits);
    const processed = applyChain(s.chain, s.ids, s.work);
    const id = s.sampling ? sample(processed, s.rng) : argmax(processed);
    const logprob = s.logits[id] - lse;
    s.ids.push(id);
    s.out.push(id);
    if (s.eos.has(id)) {
      const tail = s.stops.push(s.decoder.flush()).text + s.stops.flush();
      s.text += tail;
      s.push({ token: { id, text: tail, logprob } });
      s.done = true;
      s.finish = "eos";
      return;
    }
    const r = s.stops.push(s.decoder.push(id));
    const last = s.out.length >= s.maxNew;
    const delta = last && !r.stopped ? r.text + s.stops.push(s.decoder.flush()).text + s.stops.flush() : r.text;
    s.text += delta;
    s.push({ token: { id, text: delta, logprob } });
    if (r.stopped) { s.done = true; s.finish = "stop"; }
    else if (last) { s.done = true; s.finish = "length"; }
  }

  private end(s: Seq): void {
    if (s.finish === "abort") s.text += s.stops.push(s.decoder.flush()).text + s.stops.flush();
    s.cache = null;
    s.push({ end: { finishReason: s.finish, ids: s.out, text: s.text, promptTokens: s.prompt.length } });
  }

  /** Right-aligns every live row's K/V in a new cache sized for what they still need; the old cache is dropped. */
  private repack(live: Seq[]): void {
    this.rows = live;
    if (!live.length) { this.cache = null; return; }
    const c = this.model.config;
    const L = Math.max(...live.map((s) => s.len));
    const M = L + Math.max(...live.map((s) => s.remaining));
    const next = this.model.newCache(M, live.length);
    const kvd = c.numKvHeads * c.headDim;
    live.forEach((s, b) => {
      const src = s.cache ?? this.cache!;
      const srcEnd = src.length; // rows in a cache all end at its length
      for (let l = 0; l < c.numLayers; l++) {
        const from = s.row * src.rowStride + (srcEnd - s.len) * kvd;
        const to = b * next.rowStride + (L - s.len) * kvd;
        next.k[l].set(src.k[l].subarray(from, from + s.len * kvd), to);
        next.v[l].set(src.v[l].subarray(from, from + s.len * kvd), to);
      }
      next.keyMask.fill(1, b * M + (L - s.len), b * M + L);
    });
    next.length = L;
    for (const [b, s] of live.entries()) { s.cache = null; s.row = b; }
    this.cache = next;
  }
}
