/**
 * generate(): an async generator of tokens — greedy or sampled with HF's processors, seeded, stopping on eos
 * ids, stop strings or max_new_tokens — streaming UTF-8-safe text deltas. Everything else (chat, CLI, server,
 * UI) consumes it.
 */
import { XverseError } from "../errors.js";
import type { XverseModel } from "../model/xverse.js";
import type { KvSequence } from "../kv/sequence.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { applyChain, argmax, logProbOf, processorChain, sample } from "./processors.js";
import { openaiAdjustments } from "./penalties.js";
import { Rng } from "./rng.js";
import { StopMatcher } from "./stop.js";
import type { SamplingRequest } from "./sampling.js";
import { yieldToEventLoop } from "../event-loop.js";

export interface GenerateOptions extends SamplingRequest {
  maxNewTokens?: number;
  /** Default: the tokenizer's eos id. */
  eosTokenIds?: number[];
  stopStrings?: string[];
  signal?: AbortSignal;
  /** Runs on the raw logits before the HF processors (e.g. a constrained-decoding mask setting −Infinity). */
  logitsHook?: (ids: readonly number[], logits: Float32Array) => void;
  /**
   * A KV sequence to generate in (a chat's earlier turns, or one from a shared pool): the longest prefix of the
   * prompt it already holds — or that other sequences left in its pool — is reused, the rest computed. Afterwards
   * it holds the prompt and the reply. Default: a private cache for this call.
   */
  cache?: KvSequence;
  /** Told how many prompt tokens came from the cache, once the prompt is in it. */
  onPrefill?: (cachedTokens: number) => void;
  /**
   * Stream the text as the prompt's continuation (default true): decoded after the prompt's last tokens, so it
   * joins to decode(prompt + ids) − decode(prompt) and a SentencePiece first token keeps its space ("Zoo" →
   * " was"), as OpenAI's completions. false: decode(ids) alone, as the official model.chat's reply.
   */
  continuation?: boolean;
}

export interface GeneratedToken {
  id: number;
  /** Text this token completes (may be "" while a UTF-8 sequence or a stop string is pending). */
  text: string;
  /** log p(id) under the model's unprocessed distribution. */
  logprob: number;
}

export type FinishReason = "eos" | "stop" | "length" | "abort";

export interface GenerateResult {
  finishReason: FinishReason;
  ids: number[];
  text: string;
  promptTokens: number;
  /** Prompt tokens whose keys and values came from the cache instead of being computed. */
  cachedTokens: number;
}

/** Prompt tokens per forward while prefilling: bounds the activation scratch for long prompts. */
export const PREFILL_CHUNK = 512;

/**
 * Computes ids [from, end) into seq in chunks of PREFILL_CHUNK; with `out`, the last token's logits land there
 * (lm_head runs only for that chunk), without it only the cache is filled.
 */
export async function prefill(model: XverseModel, seq: KvSequence, ids: readonly number[], from: number, out?: Float32Array): Promise<void> {
  for (let p = from; p < ids.length; p += PREFILL_CHUNK) {
    const end = Math.min(ids.length, p + PREFILL_CHUNK);
    await model.forwardAsync(ids.slice(p, end), seq, out && end === ids.length ? { out } : { logits: "none" });
  }
}

export async function* generate(
  model: XverseModel,
  tokenizer: Tokenizer,
  promptIds: readonly number[],
  opts: GenerateOptions = {},
): AsyncGenerator<GeneratedToken, GenerateResult> {
  if (promptIds.length === 0) throw new XverseError("bad_argument", "generate: the prompt is empty (give at least one token, e.g. BOS)");
  const maxNew = opts.maxNewTokens ?? 256;
  const sampling = opts.greedy === true ? false : opts.greedy === false || opts.temperature !== undefined || opts.topK !== undefined || opts.topP !== undefined;
  if (sampling && opts.temperature === 0) throw new XverseError("bad_argument", "temperature 0 means greedy: pass greedy instead");
  const chain = processorChain({ repetitionPenalty: opts.repetitionPenalty, temperature: opts.temperature, topK: opts.topK, topP: opts.topP, sample: sampling });
  // OpenAI's penalties and logit_bias come before Hugging Face's processors
  const adjust = openaiAdjustments(opts, promptIds.length);
  if (adjust) chain.unshift(adjust);
  const rng = new Rng(opts.seed ?? Date.now());
  const eos = new Set(opts.eosTokenIds ?? (tokenizer.eosId !== null ? [tokenizer.eosId] : []));
  const V = model.config.vocabSize;

  // a private cache holds the prompt and the reply, within the model's context size
  const seq = opts.cache ?? model.newCache(Math.max(1, Math.min(promptIds.length + maxNew, model.ctxSize)));
  if (promptIds.length > seq.maxTokens) {
    throw new XverseError("context_full", `the prompt has ${promptIds.length} tokens, more than the context size of ${seq.maxTokens}; shorten it or raise --ctx-size`);
  }
  // every generated token but the last is fed back, so the sequence limits how many can come
  const limit = Math.min(maxNew, seq.maxTokens - promptIds.length + 1);
  const cached = seq.reuse(promptIds);

  const ids = [...promptIds];
  const out: number[] = [];
  const logits = new Float32Array(V);
  const work = new Float32Array(V);
  const decoder = tokenizer.streamDecoder({ skipSpecialTokens: true, context: opts.continuation === false ? undefined : promptIds });
  const stops = new StopMatcher(opts.stopStrings ?? []);
  let text = "";
  let finish: FinishReason = "length";

  await prefill(model, seq, promptIds, cached, logits);
  opts.onPrefill?.(cached);
  for (let step = 0; step < limit; step++) {
    if (opts.signal?.aborted) { finish = "abort"; break; }
    opts.logitsHook?.(ids, logits);
    work.set(logits);
    const processed = applyChain(chain, ids, work);
    const id = sampling ? sample(processed, rng) : argmax(processed);
    const logprob = logProbOf(logits, id);
    ids.push(id);
    out.push(id);
    if (eos.has(id)) {
      finish = "eos";
      const tail = stops.push(decoder.flush()).text + stops.flush();
      text += tail;
      yield { id, text: tail, logprob };
      break;
    }
    const s = stops.push(decoder.push(id));
    const last = step + 1 === limit;
    // the final token also carries whatever the decoder and the stop matcher still hold back
    const delta = last && !s.stopped ? s.text + stops.push(decoder.flush()).text + stops.flush() : s.text;
    text += delta;
    yield { id, text: delta, logprob };
    if (s.stopped) { finish = "stop"; break; }
    if (step + 1 < limit) {
      await model.forwardAsync([id], seq, { out: logits });
      // let other work run between tokens (the server, a Ctrl-C handler)
      await yieldToEventLoop();
    }
  }
  if (finish === "abort") text += stops.push(decoder.flush()).text + stops.flush();
  return { finishReason: finish, ids: out, text, promptTokens: promptIds.length, cachedTokens: cached };
}

/** Runs generate() to the end and returns the result (ids and text). */
export async function generateText(model: XverseModel, tokenizer: Tokenizer, promptIds: readonly number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
  const it = generate(model, tokenizer, promptIds, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
