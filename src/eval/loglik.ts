/**
 * Log-likelihood of a continuation given a context, the way lm-evaluation-harness scores multiple choice:
 * - the context is encoded as given. lm-eval also moves trailing whitespace from the context to the
 *   continuation; the project's golden reference (golden_loglik.jsonl, "Assistant: " + "你好…") does not, and
 *   the benchmark prompts here never end in whitespace (the space goes with the choice: "Answer:" + " A"), so
 *   the two conventions agree on every benchmark item;
 * - context and whole text are encoded separately and the continuation is whole[len(context ids):], so a
 *   tokenizer that merges across the boundary still scores the continuation's own tokens;
 * - an empty context is replaced by BOS (or EOS), since the first token needs something to be predicted from;
 * - too long an input is cut from the left to the model's max_position_embeddings.
 * `isGreedy` says whether every continuation token is the argmax (lowest id on ties) at its position.
 * The KV cache is reused across calls through the longest common token prefix, so a few-shot prefix shared by
 * all items of a subject — and the context shared by the four choices of an item — is computed once.
 */
import { XverseError } from "../errors.js";
import type { KVCache } from "../model/kv-cache.js";
import type { XverseModel } from "../model/xverse.js";
import type { Tokenizer } from "../tokenizer/types.js";

export interface LoglikResult {
  /** Sum of log p(token) over the continuation's tokens (natural log). */
  logprob: number;
  isGreedy: boolean;
  /** Continuation token count (for per-token or per-byte normalisation). */
  tokens: number;
}

/** Holds a KV cache and the ids it contains, for prefix reuse between calls. One per model and caller. */
export class PrefixCache {
  cache: KVCache | null = null;
  ids: number[] = [];
}

/** Largest number of tokens fed to forward() at once (bounds scratch memory on long prompts). */
const PREFILL_CHUNK = 512;

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

/** Scores continuation ids after context ids. */
export function loglikelihoodTokens(model: XverseModel, contextIds: readonly number[], continuationIds: readonly number[], reuse: PrefixCache = new PrefixCache()): LoglikResult {
  if (contextIds.length === 0) throw new XverseError("bad_argument", "loglikelihood: the context must hold at least one token");
  if (continuationIds.length === 0) return { logprob: 0, isGreedy: true, tokens: 0 };
  const maxLen = model.config.maxPositionEmbeddings;
  if (continuationIds.length > maxLen) throw new XverseError("bad_argument", `loglikelihood: continuation of ${continuationIds.length} tokens exceeds max_position_embeddings ${maxLen}`);
  // The model reads everything but the last token; it predicts every continuation token.
  const full = [...contextIds, ...continuationIds];
  let input = full.slice(0, -1);
  const drop = Math.max(0, input.length - maxLen);
  if (drop > 0) input = input.slice(drop);
  const firstScored = contextIds.length - 1 - drop; // input position whose logits predict continuation[0]

  const cache = ensureCache(model, reuse, input.length);
  let keep = 0;
  const prev = reuse.ids;
  while (keep < prev.length && keep < input.length && prev[keep] === input[keep]) keep++;
  keep = Math.min(keep, firstScored, cache.length);
  cache.truncate(keep);
  reuse.ids = input.slice(0, keep);
  // Prefix up to the first scored position: only the cache matters, not the logits.
  for (let p = keep; p < firstScored; p += PREFILL_CHUNK) {
    model.forward(input.slice(p, Math.min(firstScored, p + PREFILL_CHUNK)), cache, { logits: "last" });
  }
  reuse.ids = input.slice(0, firstScored);
  const V = model.config.vocabSize;
  let logprob = 0;
  let isGreedy = true;
  for (let p = firstScored; p < input.length; p += PREFILL_CHUNK) {
    const end = Math.min(input.length, p + PREFILL_CHUNK);
    const logits = model.forward(input.slice(p, end), cache, { logits: "all" });
    for (let r = 0; r < end - p; r++) {
      const target = full[drop + p + r + 1]!;
      const s = scoreRow(logits, r * V, V, target);
      logprob += s.logprob;
      if (!s.argmax) isGreedy = false;
    }
    reuse.ids = input.slice(0, end);
  }
  return { logprob, isGreedy, tokens: continuationIds.length };
}

/** The one scoring function the harness uses: log p(continuation | context) with lm-eval's conventions. */
export function loglikelihood(model: XverseModel, tokenizer: Tokenizer, context: string, continuation: string, reuse?: PrefixCache): LoglikResult {
  const { contextIds, continuationIds } = encodePair(tokenizer, context, continuation);
  return loglikelihoodTokens(model, contextIds, continuationIds, reuse);
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

function ensureCache(model: XverseModel, reuse: PrefixCache, need: number): KVCache {
  if (reuse.cache && reuse.cache.maxTokens >= need) return reuse.cache;
  // Grow geometrically (a new cache loses the old prefix once), never past max_position_embeddings.
  const cap = Math.min(model.config.maxPositionEmbeddings, Math.max(need, 2 * (reuse.cache?.maxTokens ?? 0), 256));
  reuse.cache = model.newCache(cap);
  reuse.ids = [];
  return reuse.cache;
}
