/**
 * Continuous batching for the server: every active request's next token comes out of ONE forward pass (the
 * weights are read once per step for all of them — the point of batching on memory-bound hardware).
 *
 * Each request owns a KvSequence in the engine's shared KvPool; a step is model.forwardBatch() over a ragged
 * batch — one token for every decoding request plus chunks of newcomers' prompts, at most STEP_TOKENS prompt
 * tokens per step — so requests join and leave by block table alone (nothing is copied or padded), and a
 * 4K-token newcomer delays running streams by one chunk per step, not by its whole prompt. A newcomer's prompt
 * first reuses every leading block already in the pool (shared system prompts, tool blocks, earlier turns):
 * only the rest is computed, and the count comes back as cachedTokens. A request's blocks go back to the pool
 * when it ends; its full blocks stay cached (LRU) for the next request with the same prefix.
 *
 * `generate()` below keeps generate.ts's contract (tokens with text deltas and logprobs; eos, stop strings,
 * max tokens, abort; a logits hook), so the engine can use either.
 */
import type { GeneratedToken, GenerateOptions, GenerateResult, FinishReason } from "../generate/generate.js";
import { applyChain, argmax, processorChain, sample, type LogitsProcessor } from "../generate/processors.js";
import { openaiAdjustments } from "../generate/penalties.js";
import { Rng } from "../generate/rng.js";
import { StopMatcher } from "../generate/stop.js";
import { XverseError } from "../errors.js";
import type { KvPool } from "../kv/pool.js";
import type { KvSequence } from "../kv/sequence.js";
import type { XverseModel } from "../model/xverse.js";
import type { StreamDecoder, Tokenizer } from "../tokenizer/types.js";
import { logSumExp } from "./logprobs.js";
import { yieldToEventLoop } from "../event-loop.js";

/** Prompt tokens computed per step, across all newcomers (the running streams' tokens come on top). */
export const STEP_TOKENS = 256;

type Item = { token: GeneratedToken } | { end: GenerateResult } | { error: Error };

class Seq {
  readonly ids: number[];
  readonly out: number[] = [];
  /** Its keys and values, in the shared pool (null until admitted). */
  kv: KvSequence | null = null;
  /** Prompt tokens reused from the pool (while prefilling, kv.length is how far the prompt has got). */
  cached = 0;
  /** Blocks it may need at most (prompt + max new tokens), counted while it is admitted. */
  need = 0;
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
    const adjust = openaiAdjustments(opts, prompt.length);
    if (adjust) this.chain.unshift(adjust);
    this.rng = new Rng(opts.seed ?? Date.now());
    this.eos = new Set(opts.eosTokenIds ?? (tok.eosId !== null ? [tok.eosId] : []));
    this.decoder = tok.streamDecoder({ skipSpecialTokens: true, context: opts.continuation === false ? undefined : prompt });
    this.stops = new StopMatcher(opts.stopStrings ?? []);
  }

  get maxNew(): number {
    return this.opts.maxNewTokens ?? 256;
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
  private running = false;
  /** Blocks the admitted requests may need at most: newcomers wait while theirs would not fit the budget. */
  private committed = 0;
  /** Largest batch one forward pass has run (for tests and /health). */
  maxBatchSeen = 0;

  constructor(
    private readonly model: XverseModel,
    private readonly tok: Tokenizer,
    /** Where every request's keys and values live. */
    readonly pool: KvPool,
    /** Most tokens one request may hold (prompt + reply). */
    readonly ctxSize: number,
  ) {}

  get active(): number {
    return this.rows.length + this.waiting.length;
  }

  async *generate(promptIds: readonly number[], opts: GenerateOptions = {}): AsyncGenerator<GeneratedToken, GenerateResult> {
    if (promptIds.length === 0) throw new XverseError("bad_argument", "generate: the prompt is empty (give at least one token, e.g. BOS)");
    if (promptIds.length > this.ctxSize) throw new XverseError("context_full", `the prompt has ${promptIds.length} tokens, more than the context size of ${this.ctxSize}`);
    const seq = new Seq(promptIds, opts, this.tok, this.model.config.vocabSize);
    if (seq.sampling && opts.temperature === 0) throw new XverseError("bad_argument", "temperature 0 means greedy: pass greedy instead");
    this.waiting.push(seq);
    if (!this.running) void this.loop();
    try {
      for (;;) {
        const item = await seq.next();
        if ("end" in item) return item.end;
        if ("error" in item) throw item.error;
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
        // 1. every running row picks its next token from its logits; finished rows leave (blocks released)
        for (const s of this.rows) this.step(s);
        for (const s of this.rows) if (s.done) this.end(s);
        this.rows = this.rows.filter((s) => !s.done);
        // 2. the batch: each running row's last token, then newcomers' prompt chunks within the step budget
        const items: { seq: KvSequence; tokens: number[] }[] = [];
        const owners: Seq[] = [];
        for (const s of this.rows) {
          items.push({ seq: s.kv!, tokens: [s.ids[s.ids.length - 1]] });
          owners.push(s);
        }
        let budget = STEP_TOKENS;
        for (const s of [...this.waiting]) {
          if (s.opts.signal?.aborted || s.done) {
            this.waiting.splice(this.waiting.indexOf(s), 1);
            s.done = true;
            s.finish = "abort";
            this.end(s);
            continue;
          }
          if (budget <= 0) continue;
          if (!s.kv) {
            // admission: the request's worst case (prompt + max new tokens) must fit next to the admitted ones,
            // so a running request never runs out of blocks mid-reply (blocks shared by prefix count twice)
            const need = Math.ceil(Math.min(s.prompt.length + s.maxNew, this.ctxSize) / this.pool.blockSize);
            if (need > this.pool.capacityBlocks) {
              this.waiting.splice(this.waiting.indexOf(s), 1);
              this.fail(s, new XverseError("kv_budget", `the request needs up to ${need} KV blocks (${s.prompt.length} prompt + ${s.maxNew} new tokens) but the KV budget holds ${this.pool.capacityBlocks} (${this.pool.capacityBlocks * this.pool.blockSize} tokens); lower max_tokens or raise --kv-budget`));
              continue;
            }
            if (this.committed + need > this.pool.capacityBlocks) break; // FIFO: wait for running requests to end
            s.need = need;
            this.committed += need;
            s.kv = this.pool.sequence(this.ctxSize);
            s.cached = s.kv.reuse(s.prompt);
          }
          const done = s.kv.length;
          const n = Math.min(budget, s.prompt.length - done);
          const tokens = s.prompt.slice(done, done + n);
          items.push({ seq: s.kv, tokens });
          owners.push(s);
          budget -= n;
        }
        if (items.length) {
          const B = items.length;
          if (out.length < B * V) out = new Float32Array(B * V);
          const o = out.subarray(0, B * V);
          await this.model.forwardBatchAsync(items, { out: o });
          this.maxBatchSeen = Math.max(this.maxBatchSeen, B);
          const decoding = this.rows.length; // the first items are the running rows' tokens, then prompt chunks
          owners.forEach((s, b) => {
            if (b >= decoding) {
              if (s.kv!.length < s.prompt.length) return; // prompt not done: these logits are not needed
              this.waiting.splice(this.waiting.indexOf(s), 1);
              this.rows.push(s);
              s.opts.onPrefill?.(s.cached);
            }
            s.logits.set(o.subarray(b * V, (b + 1) * V));
          });
        }
        // let messages in (new jobs, aborts) and consumers forward their tokens
        await yieldToEventLoop();
      }
    } catch (e) {
      // a kernel failure fails every request in flight, not the worker
      for (const s of [...this.rows, ...this.waiting.splice(0)]) {
        this.free(s);
        s.push({ end: { finishReason: "abort", ids: s.out, text: s.text + `\n[error: ${(e as Error).message}]`, promptTokens: s.prompt.length, cachedTokens: s.cached } });
      }
      this.rows = [];
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
    // the context is full when the next token could not be fed back
    const last = s.out.length >= s.maxNew || s.kv!.length >= s.kv!.maxTokens;
    const delta = last && !r.stopped ? r.text + s.stops.push(s.decoder.flush()).text + s.stops.flush() : r.text;
    s.text += delta;
    s.push({ token: { id, text: delta, logprob } });
    if (r.stopped) { s.done = true; s.finish = "stop"; }
    else if (last) { s.done = true; s.finish = "length"; }
  }

  /** Ends one request with an error its consumer throws (the engine turns it into an HTTP error). */
  private fail(s: Seq, e: Error): void {
    s.done = true;
    this.free(s);
    s.push({ error: e });
  }

  private free(s: Seq): void {
    s.kv?.release();
    this.committed -= s.need;
    s.need = 0;
  }

  private end(s: Seq): void {
    if (s.finish === "abort") s.text += s.stops.push(s.decoder.flush()).text + s.stops.flush();
    this.free(s);
    s.push({ end: { finishReason: s.finish, ids: s.out, text: s.text, promptTokens: s.prompt.length, cachedTokens: s.cached } });
  }
}
