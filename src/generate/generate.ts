/**
 * generate(): an async generator of tokens — greedy or sampled with HF's processors, seeded, stopping on eos
 * ids, stop strings or max_new_tokens — streaming UTF-8-safe text deltas. Everything else (chat, CLI, server,
 * UI) consumes it.
 */
import { XverseError } from "../errors.js";
import type { XverseModel } from "../model/xverse.js";
import type { KVCache } from "../model/kv-cache.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { applyChain, argmax, logProbOf, processorChain, sample } from "./processors.js";
import { Rng } from "./rng.js";
import { StopMatcher } from "./stop.js";
import type { SamplingRequest } from "./sampling.js";

export interface GenerateOptions extends SamplingRequest {
  maxNewTokens?: number;
  /** Default: the tokenizer's eos id. */
  eosTokenIds?: number[];
  stopStrings?: string[];
  signal?: AbortSignal;
  /** Runs on the raw logits before the HF processors (e.g. a constrained-decoding mask setting −Infinity). */
  logitsHook?: (ids: readonly number[], logits: Float32Array) => void;
  /** Reuse a cache (e.g. a chat's shared prefix); it must hold exactly the first `cache.length` prompt ids. */
  cache?: KVCache;
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
  const rng = new Rng(opts.seed ?? Date.now());
  const eos = new Set(opts.eosTokenIds ?? (tokenizer.eosId !== null ? [tokenizer.eosId] : []));
  const V = model.config.vocabSize;

  const total = promptIds.length + maxNew;
  let cache = opts.cache;
  if (!cache || cache.maxTokens < total) cache = model.newCache(total);
  const reuse = opts.cache === cache ? cache.length : 0;
  if (reuse >= promptIds.length) cache.truncate(promptIds.length - 1);
  const start = Math.min(cache.length, promptIds.length - 1);

  const ids = [...promptIds];
  const out: number[] = [];
  const logits = new Float32Array(V);
  const work = new Float32Array(V);
  const decoder = tokenizer.streamDecoder({ skipSpecialTokens: true });
  const stops = new StopMatcher(opts.stopStrings ?? []);
  let text = "";
  let finish: FinishReason = "length";

  model.forward(promptIds.slice(start), cache, { out: logits });
  for (let step = 0; step < maxNew; step++) {
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
    const last = step + 1 === maxNew;
    // the final token also carries whatever the decoder and the stop matcher still hold back
    const delta = last && !s.stopped ? s.text + stops.push(decoder.flush()).text + stops.flush() : s.text;
    text += delta;
    yield { id, text: delta, logprob };
    if (s.stopped) { finish = "stop"; break; }
    if (step + 1 < maxNew) {
      model.forward([id], cache, { out: logits });
      // let other work run between tokens (the server, a Ctrl-C handler)
      await new Promise<void>((r) => setImmediate(r));
    }
  }
  if (finish === "abort") text += stops.push(decoder.flush()).text + stops.flush();
  return { finishReason: finish, ids: out, text, promptTokens: promptIds.length };
}

/** Runs generate() to the end and returns the result (ids and text). */
export async function generateText(model: XverseModel, tokenizer: Tokenizer, promptIds: readonly number[], opts: GenerateOptions = {}): Promise<GenerateResult> {
  const it = generate(model, tokenizer, promptIds, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
