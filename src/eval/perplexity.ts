/**
 * Sliding-window perplexity, Hugging Face's strided method ("Perplexity of fixed-length models"): windows of
 * `context` tokens start every `stride` tokens; each window scores only the tokens no earlier window scored,
 * with everything before them in the window as context. stride = context gives disjoint windows (fast, less
 * context per token, and as in HF each window's first token goes unscored: nothing in its window precedes it);
 * a smaller stride gives each token more context at more compute and scores every token but the text's first.
 * The result is exp(total NLL / scored tokens).
 */
import { XverseError } from "../errors.js";
import type { XverseModel } from "../model/xverse.js";
import { scoreRow } from "./loglik.js";
import { yieldToEventLoop } from "../event-loop.js";

export interface PerplexityOptions {
  /** Window length in tokens; default and maximum: max_position_embeddings. */
  context?: number;
  /** Window start step; default = context. */
  stride?: number;
  /** Called after each window with (tokens scored so far, total to score). */
  onProgress?: (scored: number, total: number) => void;
}

export interface PerplexityResult {
  perplexity: number;
  /** Mean negative log-likelihood per scored token (nats). */
  meanNll: number;
  tokens: number;
  scored: number;
  windows: number;
  context: number;
  stride: number;
}

const CHUNK = 256;

export async function perplexity(model: XverseModel, ids: readonly number[], opts: PerplexityOptions = {}): Promise<PerplexityResult> {
  const maxPos = model.ctxSize;
  const context = opts.context ?? maxPos;
  const stride = opts.stride ?? context;
  if (!(context >= 2 && context <= maxPos)) throw new XverseError("bad_argument", `--context must be between 2 and the context size ${maxPos}, got ${context}`);
  if (!(stride >= 1 && stride <= context)) throw new XverseError("bad_argument", `--stride must be between 1 and --context ${context}, got ${stride}`);
  if (ids.length < 2) throw new XverseError("bad_argument", `perplexity needs at least 2 tokens, the text has ${ids.length}`);
  const V = model.config.vocabSize;
  const cache = model.newCache(Math.min(context, ids.length));
  let nll = 0, scored = 0, windows = 0, prevEnd = 0;
  for (let begin = 0; begin < ids.length; begin += stride) {
    const end = Math.min(begin + context, ids.length);
    // Targets: positions [first, end) not scored before; position t is predicted by the logits at t − 1.
    const first = Math.max(prevEnd, begin + 1);
    cache.truncate(0);
    for (let p = begin; p < first - 1; p += CHUNK) await model.forwardAsync(ids.slice(p, Math.min(first - 1, p + CHUNK)), cache, { logits: "none" });
    for (let p = first - 1; p < end - 1; p += CHUNK) {
      const stop = Math.min(end - 1, p + CHUNK);
      const logits = await model.forwardAsync(ids.slice(p, stop), cache, { logits: "all" });
      for (let r = 0; r < stop - p; r++) nll -= scoreRow(logits, r * V, V, ids[p + r + 1]!).logprob;
      scored += stop - p;
    }
    windows++;
    prevEnd = end;
    opts.onProgress?.(scored, ids.length - 1);
    await yieldToEventLoop();
    if (end === ids.length) break;
  }
  const meanNll = nll / scored;
  return { perplexity: Math.exp(meanNll), meanNll, tokens: ids.length, scored, windows, context, stride };
}
