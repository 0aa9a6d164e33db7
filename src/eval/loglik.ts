/**
 * Log-likelihood of a continuation given a context, the way lm-evaluation-harness scores multiple choice:
 * - the context is encoded as given. lm-eval also moves trailing whitespace from the context to the
 *   continuation; the project's golden reference (golden_loglik.jsonl, "Assistant: " + "你好…") does not, and
 *   the benchmark prompts here never end in whitespace (the space goes with the choice: "Answer:" + " A"), so
 *   the two conventions agree on every benchmark item;
 * - context and whole text are encoded separately and the continuation is whole[len(context ids):], so a
 *   tokenizer that merges across the boundary still scores the continuation's own tokens;
 * - an empty context is replaced by BOS (or EOS), since the first token needs something to be predicted from;
 * - too long an input is cut from the left to the model's context size (max_position_embeddings or --ctx-size).
 * `isGreedy` says whether every continuation token is the argmax (lowest id on ties) at its position.
 * The KV sequence is reused across calls through the longest common token prefix (and its pool's cached
 * blocks), so a few-shot prefix shared by all items of a subject — and the context shared by the four choices of
 * an item — is computed once.
 */
import { XverseError } from "../errors.js";
import type { KvSequence } from "../kv/sequence.js";
import type { XverseModel } from "../model/xverse.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { PREFILL_CHUNK } from "../generate/generate.js";

export interface LoglikResult {
  /** Sum of log p(token) over the continuation's tokens (natural log). */
  logprob: number;
  isGreedy: boolean;
  /** Continuation token count (for per-token or per-byte normalisation). */
  tokens: number;
}

/** Holds a KV sequence for prefix reuse between calls, for the model it was made for. One per caller. */
export class PrefixCache {
  seq: KvSequence | null = null;
  model: XverseModel | null = null;
}

/** lm-eval's _encode_pair: context ids and continuation ids. */
export function encodePair(tokenizer: Tokenizer, context: string, continuation: string): { contextIds: number[]; continuationIds: number[] } {
  const whole = tokenizer.encode(context + continuation).ids;
  let contextIds = tokenizer.encode(context).ids;
  if (context === "") {
    // encode("") may still hold BOS from the post-processor; either way the context is one start token.
    const start = tokenizer.bosId ?? tokenizer.eosId;
    if (start === null) throw new XverseError("bad_argument", "loglikelihood: empty context and the tokenizer has no BOS or EOS to start from");
    contextIds = [start];
    const continuationIds = whole[0] === start ? whole.slice(1) : whole;
    return { contextIds, continuationIds };
  }
  return { contextIds, continuationIds: whole.slice(contextIds.length) };
}

/** One forward the scoring needs: tokens appended to seq; the generator receives its logits. */
interface ForwardStep {
  seq: KvSequence;
  tokens: number[];
  logits: "none" | "all";
}

/** Scores continuation ids after context ids (CPU backends; loglikelihoodTokensAsync runs on any backend). */
export function loglikelihoodTokens(model: XverseModel, contextIds: readonly number[], continuationIds: readonly number[], reuse: PrefixCache = new PrefixCache()): LoglikResult {
  const g = scoreSteps(model, contextIds, continuationIds, reuse);
  for (let r = g.next(); ; ) {
    if (r.done) return r.value;
    r = g.next(model.forward(r.value.tokens, r.value.seq, { logits: r.value.logits }));
  }
}

/** loglikelihoodTokens on any backend (a device backend reads its logits back asynchronously). */
export async function loglikelihoodTokensAsync(model: XverseModel, contextIds: readonly number[], continuationIds: readonly number[], reuse: PrefixCache = new PrefixCache()): Promise<LoglikResult> {
  const g = scoreSteps(model, contextIds, continuationIds, reuse);
  for (let r = g.next(); ; ) {
    if (r.done) return r.value;
    r = g.next(await model.forwardAsync(r.value.tokens, r.value.seq, { logits: r.value.logits }));
  }
}

/** The scoring as a sequence of forwards (yielded), so the sync and async drivers share it. */
function* scoreSteps(model: XverseModel, contextIds: readonly number[], continuationIds: readonly number[], reuse: PrefixCache): Generator<ForwardStep, LoglikResult, Float32Array> {
  if (contextIds.length === 0) throw new XverseError("bad_argument", "loglikelihood: the context must hold at least one token");
  if (continuationIds.length === 0) return { logprob: 0, isGreedy: true, tokens: 0 };
  const maxLen = model.ctxSize;
  if (continuationIds.length > maxLen) throw new XverseError("bad_argument", `loglikelihood: continuation of ${continuationIds.length} tokens exceeds the context size ${maxLen}`);
  // The model reads everything but the last token; it predicts every continuation token.
  const full = [...contextIds, ...continuationIds];
  let input = full.slice(0, -1);
  const drop = Math.max(0, input.length - maxLen);
  if (drop > 0) input = input.slice(drop);
  const firstScored = contextIds.length - 1 - drop; // input position whose logits predict continuation[0]

  if (!reuse.seq || reuse.model !== model) {
    reuse.seq = model.createPool().sequence(maxLen);
    reuse.model = model;
  }
  const seq = reuse.seq;
  // keep what the sequence already holds of input[0, firstScored); compute the rest of that prefix without logits
  seq.reuse(input.slice(0, firstScored + 1));
  for (let p = seq.length; p < firstScored; p += PREFILL_CHUNK) {
    yield { seq, tokens: input.slice(p, Math.min(firstScored, p + PREFILL_CHUNK)), logits: "none" };
  }
  const V = model.config.vocabSize;
  let logprob = 0;
  let isGreedy = true;
  for (let p = firstScored; p < input.length; p += PREFILL_CHUNK) {
    const end = Math.min(input.length, p + PREFILL_CHUNK);
    const logits = yield { seq, tokens: input.slice(p, end), logits: "all" };
    for (let r = 0; r < end - p; r++) {
      const target = full[drop + p + r + 1]!;
      const s = scoreRow(logits, r * V, V, target);
      logprob += s.logprob;
      if (!s.argmax) isGreedy = false;
    }
  }
  return { logprob, isGreedy, tokens: continuationIds.length };
}

/** The one scoring function the harness uses: log p(continuation | context) with lm-eval's conventions. */
export function loglikelihood(model: XverseModel, tokenizer: Tokenizer, context: string, continuation: string, reuse?: PrefixCache): LoglikResult {
  const { contextIds, continuationIds } = encodePair(tokenizer, context, continuation);
  return loglikelihoodTokens(model, contextIds, continuationIds, reuse);
}

/** loglikelihood on any backend. */
export function loglikelihoodAsync(model: XverseModel, tokenizer: Tokenizer, context: string, continuation: string, reuse?: PrefixCache): Promise<LoglikResult> {
  const { contextIds, continuationIds } = encodePair(tokenizer, context, continuation);
  return loglikelihoodTokensAsync(model, contextIds, continuationIds, reuse);
}

/** log_softmax(row)[target] in float64, and whether target is the argmax (lowest id on ties). */
export function scoreRow(logits: Float32Array, off: number, V: number, target: number): { logprob: number; argmax: boolean } {
  let max = -Infinity, best = 0;
  for (let i = 0; i < V; i++) {
    const x = logits[off + i]!;
    if (x > max) { max = x; best = i; }
  }
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[off + i]! - max);
  return { logprob: logits[off + target]! - max - Math.log(sum), argmax: best === target };
}
