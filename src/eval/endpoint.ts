/**
 * The harness against an OpenAI-compatible server, over the legacy /v1/completions wire format.
 * - Log-likelihood: `{prompt, echo: true, logprobs: 1, max_tokens: 0, temperature: 0}`; the server returns
 *   `choices[0].logprobs = {tokens, token_logprobs, top_logprobs, text_offset}` for the prompt's own tokens
 *   (the first token's logprob is null). The continuation's tokens are summed; a token is greedy when its
 *   logprob is the best in top_logprobs. With a local tokenizer (recommended; lm-eval does the same) the
 *   prompt is sent as token ids and the split is exact; without one the prompt is text and the split comes
 *   from text_offset (code-point offsets), where a token straddling the boundary counts as continuation.
 *   A server that refuses max_tokens 0 is retried once with max_tokens 1 and the generated tail is dropped.
 * - Generation: `{prompt, max_tokens, temperature: 0, stop}` (OpenAI allows four stop strings, so the rest
 *   are applied here to the returned text).
 * Who supports what (checked against their trackers, 2024–2026):
 * - `xverse serve`: echo + logprobs with max_tokens 0, text or token-id prompts (tested here against it).
 * - vLLM: echo on /v1/completions since 0.2.4, returning prompt log-probs; some versions want max_tokens ≥ 1
 *   (lm-eval-harness issue #1411) — the retry with max_tokens 1 covers them. Token-id prompts are accepted.
 * - llama.cpp's llama-server: generation only. It refuses echo ("Only no echo is supported"), and builds that
 *   accept logprobs report them for generated tokens only, in the newer `logprobs.content` shape (llama.cpp
 *   issues #8942, #27174; PRs #15189, #17935 unmerged). Multiple choice therefore stops with an error naming
 *   the missing field — never a silent chance-level score; gsm8k and humaneval work.
 * - OpenAI's hosted API no longer accepts echo with logprobs.
 */
import { XverseError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { encodePair, type LoglikResult } from "./loglik.js";
import { truncateAtStop } from "./prompts.js";
import type { GenerateRequest, Scorer } from "./scorer.js";
import { maxOf } from "../arrays.js";

export interface EndpointOptions {
  apiKey?: string;
  /** The `model` field; default: the first id from GET /v1/models. */
  model?: string;
  /** When given, prompts are sent as token ids (exact context/continuation split). */
  tokenizer?: Tokenizer;
  timeoutMs?: number;
  retries?: number;
}

interface Logprobs {
  tokens?: string[];
  token_logprobs?: (number | null)[];
  top_logprobs?: (Record<string, number> | null)[] | null;
  text_offset?: number[];
}

/** "http://h:8000", "http://h:8000/", "http://h:8000/v1" → "http://h:8000/v1". */
export function apiBase(url: string): string {
  const u = url.replace(/\/+$/, "");
  return /\/v1$/.test(u) ? u : `${u}/v1`;
}

const cpLength = (s: string) => [...s].length;

export class EndpointScorer implements Scorer {
  readonly id: string;
  private readonly base: string;
  private model: string | undefined;
  private maxTokensForEcho = 0;

  constructor(url: string, private readonly opts: EndpointOptions = {}) {
    this.base = apiBase(url);
    this.model = opts.model;
    this.id = `endpoint:${this.base}${opts.model ? `#${opts.model}` : ""}`;
  }

  /** Resolves the model name once (GET /v1/models) when none was given. */
  async init(): Promise<this> {
    if (this.model) return this;
    try {
      const r = (await this.request("GET", "/models")) as { data?: { id?: string }[] };
      this.model = r.data?.[0]?.id;
    } catch { /* a server without /models takes requests without a model field */ }
    return this;
  }

  get modelName(): string | undefined { return this.model; }

  async loglikelihood(context: string, continuation: string): Promise<LoglikResult> {
    const tok = this.opts.tokenizer;
    if (tok) {
      const { contextIds, continuationIds } = encodePair(tok, context, continuation);
      const ids = [...contextIds, ...continuationIds];
      const lp = await this.echo(ids);
      return sumRange(lp, contextIds.length, ids.length, "token");
    }
    const prompt = context + continuation;
    const lp = await this.echo(prompt);
    const offsets = lp.text_offset ?? [];
    const end = cpLength(prompt), boundary = cpLength(context);
    // Prompt tokens only (a max_tokens 1 retry appends one generated token at offset ≥ the prompt length).
    let n = offsets.length;
    while (n > 0 && offsets[n - 1]! >= end && n > 1) n--;
    let first = 0;
    while (first < n && (offsets[first + 1] ?? Infinity) <= boundary) first++;
    return sumRange(lp, Math.max(first, 1), n, "text");
  }

  async generate(prompt: string, req: GenerateRequest): Promise<string> {
    const body = { ...this.modelField(), prompt, max_tokens: req.maxNewTokens, temperature: 0, stop: req.stop.slice(0, 4) };
    const r = (await this.request("POST", "/completions", body)) as { choices?: { text?: string }[] };
    const text = r.choices?.[0]?.text;
    if (typeof text !== "string") throw new XverseError("bad_response", `${this.base}/completions: response has no choices[0].text`);
    return truncateAtStop(text, req.stop);
  }

  private modelField(): { model?: string } {
    return this.model ? { model: this.model } : {};
  }

  private async echo(prompt: string | number[]): Promise<Logprobs> {
    const body = { ...this.modelField(), prompt, echo: true, logprobs: 1, max_tokens: this.maxTokensForEcho, temperature: 0 };
    let r: unknown;
    try {
      r = await this.request("POST", "/completions", body);
    } catch (e) {
      // Any HTTP refusal of max_tokens 0 (400, 422, or a 500 from servers that crash on it) gets one retry with 1.
      if (this.maxTokensForEcho !== 0 || !(e instanceof XverseError && /^http_/.test(e.code))) throw e;
      this.maxTokensForEcho = 1;
      r = await this.request("POST", "/completions", { ...body, max_tokens: 1 });
    }
    const lp = (r as { choices?: { logprobs?: Logprobs | null }[] }).choices?.[0]?.logprobs;
    if (!lp || !Array.isArray(lp.tokens) || !Array.isArray(lp.token_logprobs)) {
      throw new XverseError("unsupported", `${this.base}/completions returned no prompt log-probabilities for echo: true + logprobs (choices[0].logprobs.tokens/token_logprobs missing): this server cannot score multiple choice; use it for gsm8k/humaneval, or use xverse serve / vLLM`);
    }
    if (this.maxTokensForEcho === 1 && Array.isArray(prompt)) {
      // Token-id prompts: everything past the prompt is the generated token.
      lp.tokens = lp.tokens.slice(0, prompt.length);
      lp.token_logprobs = lp.token_logprobs.slice(0, prompt.length);
      if (lp.top_logprobs) lp.top_logprobs = lp.top_logprobs.slice(0, prompt.length);
    }
    return lp;
  }

  private async request(method: "GET" | "POST", path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.opts.apiKey) headers.authorization = `Bearer ${this.opts.apiKey}`;
    const retries = this.opts.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(this.base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(this.opts.timeoutMs ?? 600_000) });
      } catch (e) {
        if (attempt < retries) { await sleep(1000 * 2 ** attempt); continue; }
        throw new XverseError("endpoint_unreachable", `${this.base}${path}: ${(e as Error).message} (is the server running?)`);
      }
      const text = await res.text();
      if (res.status >= 500 && attempt < retries) { await sleep(1000 * 2 ** attempt); continue; }
      if (!res.ok) throw new XverseError(`http_${res.status}`, `${this.base}${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
      try { return JSON.parse(text); } catch {
        throw new XverseError("bad_response", `${this.base}${path}: response is not JSON: ${text.slice(0, 200)}`);
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function sumRange(lp: Logprobs, from: number, to: number, mode: string): LoglikResult {
  const lps = lp.token_logprobs!, tops = lp.top_logprobs ?? [];
  if (to > lps.length || from >= to) {
    throw new XverseError("bad_response", `completions: echo returned ${lps.length} prompt tokens, the continuation needs tokens ${from}..${to - 1} (${mode} split)`);
  }
  let logprob = 0, isGreedy = true;
  for (let i = from; i < to; i++) {
    const x = lps[i];
    if (typeof x !== "number") throw new XverseError("bad_response", `completions: no logprob for prompt token ${i} (${JSON.stringify(lp.tokens![i])})`);
    logprob += x;
    const top = tops[i];
    if (top) {
      const best = maxOf(Object.values(top));
      if (x < best - 1e-6) isGreedy = false;
    } else {
      isGreedy = false;
    }
  }
  return { logprob, isGreedy, tokens: to - from };
}
