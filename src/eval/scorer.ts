/**
 * What the harness needs from a model, in-process or behind an OpenAI-compatible server: log-likelihoods for
 * multiple choice and greedy completions for GSM8K and HumanEval. The tasks never know which one they talk to.
 */
import type { XverseModel } from "../model/xverse.js";
import type { Tokenizer } from "../tokenizer/types.js";
import type { KvSequence } from "../kv/sequence.js";
import { generateText } from "../generate/generate.js";
import { loglikelihoodAsync, PrefixCache, type LoglikResult } from "./loglik.js";
import { truncateAtStop } from "./prompts.js";
import { yieldToEventLoop } from "../event-loop.js";

export type { LoglikResult } from "./loglik.js";

export interface GenerateRequest {
  maxNewTokens: number;
  /** Generation ends before the first of these; the returned text never contains one. */
  stop: readonly string[];
}

export interface Scorer {
  /** Identifies the model in cache keys and reports (a resolved path or endpoint + model name). */
  readonly id: string;
  /** How many calls may run at once (undefined: no limit). */
  readonly maxConcurrency?: number;
  loglikelihood(context: string, continuation: string): Promise<LoglikResult>;
  generate(prompt: string, req: GenerateRequest): Promise<string>;
}

/**
 * The in-process scorer: one model, one tokenizer, one KV pool — a sequence for log-likelihoods and one for
 * completions, each keeping the longest prefix shared with the previous call (the few-shot examples).
 */
export class LocalScorer implements Scorer {
  private readonly reuse = new PrefixCache();
  private gen: KvSequence | null = null;
  /** One model, one KV cache: calls must not interleave. */
  readonly maxConcurrency = 1;

  constructor(readonly model: XverseModel, readonly tokenizer: Tokenizer, readonly id: string) {}

  async loglikelihood(context: string, continuation: string): Promise<LoglikResult> {
    const r = await loglikelihoodAsync(this.model, this.tokenizer, context, continuation, this.reuse);
    // Yield between items so the progress bar and Ctrl-C stay responsive.
    await yieldToEventLoop();
    return r;
  }

  async generate(prompt: string, req: GenerateRequest): Promise<string> {
    let ids = this.tokenizer.encode(prompt).ids;
    // A small context (stories260K: 512) cannot hold prompt + max new tokens: keep at least half the window for
    // the prompt (cut from the left, as lm-eval does) and let the answer have the rest.
    const maxPos = this.model.ctxSize;
    const keep = Math.max(1, Math.max(maxPos - req.maxNewTokens, Math.floor(maxPos / 2)));
    if (ids.length > keep) ids = ids.slice(ids.length - keep);
    const maxNewTokens = Math.min(req.maxNewTokens, maxPos - ids.length);
    this.gen ??= this.model.createPool().sequence(maxPos);
    const r = await generateText(this.model, this.tokenizer, ids, { greedy: true, maxNewTokens, stopStrings: [...req.stop], cache: this.gen });
    return truncateAtStop(r.text, req.stop);
  }
}
