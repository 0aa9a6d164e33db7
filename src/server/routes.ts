/**
 * /v1/chat/completions and /v1/completions: a validated job goes to the scheduler, and its events come back as
 * one JSON response or as SSE chunks in OpenAI's shapes. Headers are sent only at the worker's `start` event,
 * so errors found while building the prompt (too long, bad tools) are still proper 400 responses.
 */
import { randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import { ApiError } from "./errors.js";
import type { ChatJob, CompletionJob, TokenLogprob, ToMain } from "./protocol.js";
import type { JobHandlers, Scheduler } from "./scheduler.js";
import type { Envelope } from "./schema.js";
import { sseData, sseDone, startSse } from "./sse.js";
import { pushAll } from "../arrays.js";

type Ev<T extends ToMain["type"]> = Extract<ToMain, { type: T }>;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const data = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(data), ...headers });
  res.end(data);
}

const now = () => Math.floor(Date.now() / 1000);
/** OpenAI's usage object; cached_tokens counts prompt tokens served from the KV pool (prefix reuse). */
const usage = (p: number, m: { completionTokens: number; cachedTokens?: number }) => ({
  prompt_tokens: p, completion_tokens: m.completionTokens, total_tokens: p + m.completionTokens,
  prompt_tokens_details: { cached_tokens: m.cachedTokens ?? 0 },
});

/** Runs a job for one response; a client that goes away cancels it (queued: dropped; running: aborted). */
function runJob(sched: Scheduler, res: ServerResponse, job: ChatJob | CompletionJob, h: Omit<JobHandlers, "onError">, timeoutMs?: number): void {
  let started = false, timedOut = false;
  // serve --request-timeout: still queued → 504; running → cut, and the reply ends with finish_reason "length"
  const timer = timeoutMs ? setTimeout(() => {
    timedOut = true;
    if (ticket.stop() === "dropped" && !started) {
      sendJson(res, 504, new ApiError(504, `The request waited ${timeoutMs / 1000} s without starting (serve --request-timeout); retry later`, null, "timeout").body());
    }
  }, timeoutMs) : null;
  timer?.unref();
  const ticket = sched.submit(job, {
    ...h,
    onStart: (m) => { started = true; h.onStart(m); },
    onEnd: (m) => {
      if (m.last !== false && timer) clearTimeout(timer);
      h.onEnd(timedOut && m.finishReason === "abort" ? { ...m, finishReason: "length" } : m);
    },
    onError: (m) => {
      if (timer) clearTimeout(timer);
      const err = new ApiError(m.status, m.message, m.param, m.code);
      if (!started) sendJson(res, err.status, err.body());
      else {
        // mid-stream: the status is already 200, so the error travels as a chunk, as OpenAI does
        sseData(res, err.body());
        sseDone(res);
      }
    },
  });
  res.on("close", () => {
    if (!res.writableFinished) ticket.cancel();
  });
}

export function chatCompletion(sched: Scheduler, res: ServerResponse, env: Envelope<ChatJob>, timeoutMs?: number): void {
  const id = `chatcmpl-${randomBytes(12).toString("hex")}`;
  const created = now(), model = sched.model.id;
  // n > 1: one text, logprobs list and end per choice; the response is complete when every choice has ended
  const n = env.job.sampling.n ?? 1;
  let promptTokens = 0;
  const texts: string[] = new Array(n).fill("");
  const entries: ReturnType<typeof chatLogprob>[][] = Array.from({ length: n }, () => []);
  const ends: (Ev<"end"> | null)[] = new Array(n).fill(null);
  const chunk = (delta: object, finish: string | null, lp: TokenLogprob | null = null, index = 0) => ({
    id, object: "chat.completion.chunk", created, model,
    choices: [{ index, delta, logprobs: lp ? { content: [chatLogprob(lp)], refusal: null } : null, finish_reason: finish }],
  });
  const toolCalls = (m: Ev<"end">) => m.toolCall
    ? [{ id: `call_${randomBytes(12).toString("hex")}`, type: "function", function: { name: m.toolCall.name, arguments: m.toolCall.arguments } }]
    : undefined;
  /** OpenAI has no "abort": an aborted choice reports "stop". */
  const finishOf = (m: Ev<"end">) => m.finishReason === "abort" ? "stop" : m.finishReason;
  /** Usage over all choices: the prompt once, every choice's completion tokens. */
  const total = (): { completionTokens: number; cachedTokens?: number } => ({
    completionTokens: ends.reduce((a, e) => a + (e?.completionTokens ?? 0), 0),
    cachedTokens: ends[0]?.cachedTokens,
  });

  runJob(sched, res, env.job, {
    onStart(m) {
      promptTokens = m.promptTokens;
      if (!env.stream) return;
      startSse(res);
      for (let i = 0; i < n; i++) sseData(res, chunk({ role: "assistant", content: "" }, null, null, i));
    },
    onDelta(m) {
      const i = m.choice ?? 0;
      if (env.stream) sseData(res, chunk({ content: m.text }, null, m.logprob ?? null, i));
      else {
        texts[i] += m.text;
        if (m.logprob) entries[i].push(chatLogprob(m.logprob));
      }
    },
    onEnd(m) {
      const i = m.choice ?? 0;
      ends[i] = m;
      if (env.stream) {
        const calls = toolCalls(m);
        if (calls) sseData(res, chunk({ tool_calls: calls.map((c, index) => ({ index, ...c })) }, null, null, i));
        sseData(res, chunk({}, finishOf(m), null, i));
        if (ends.some((e) => !e)) return;
        if (env.includeUsage) sseData(res, { id, object: "chat.completion.chunk", created, model, choices: [], usage: usage(promptTokens, total()) });
        sseDone(res);
        return;
      }
      if (ends.some((e) => !e)) return;
      const choices = ends.map((e, index) => {
        const c = toolCalls(e!);
        const message = c ? { role: "assistant", content: e!.text || null, tool_calls: c } : { role: "assistant", content: texts[index] };
        return { index, message, logprobs: env.job.logprobs !== null ? { content: entries[index], refusal: null } : null, finish_reason: finishOf(e!) };
      });
      sendJson(res, 200, { id, object: "chat.completion", created, model, choices, usage: usage(promptTokens, total()) });
    },
  }, timeoutMs);
}

/** One token in chat's logprobs shape: {token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}. */
function chatLogprob(t: TokenLogprob) {
  const bytes = (s: string) => [...Buffer.from(s, "utf8")];
  return {
    token: t.token, logprob: t.logprob ?? 0, bytes: bytes(t.token),
    top_logprobs: Object.entries(t.top ?? {}).map(([token, logprob]) => ({ token, logprob, bytes: bytes(token) })),
  };
}

interface LogprobsBody {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

function logprobsBody(list: TokenLogprob[]): LogprobsBody {
  return {
    tokens: list.map((t) => t.token),
    token_logprobs: list.map((t) => t.logprob),
    top_logprobs: list.map((t) => t.top),
    text_offset: list.map((t) => t.offset),
  };
}

export function completion(sched: Scheduler, res: ServerResponse, env: Envelope<CompletionJob>, timeoutMs?: number): void {
  const id = `cmpl-${randomBytes(12).toString("hex")}`;
  const created = now(), model = sched.model.id;
  const wantLp = env.job.logprobs !== null;
  let promptTokens = 0, text = "";
  const lps: TokenLogprob[] = [];
  const chunk = (t: string, lp: TokenLogprob[] | null, finish: string | null) => ({
    id, object: "text_completion", created, model, choices: [{ index: 0, text: t, logprobs: lp ? logprobsBody(lp) : null, finish_reason: finish }],
  });

  runJob(sched, res, env.job, {
    onStart(m) {
      promptTokens = m.promptTokens;
      if (m.echo) {
        text = m.echo.text;
        if (m.echo.logprobs) pushAll(lps, m.echo.logprobs);
      }
      if (!env.stream) return;
      startSse(res);
      if (m.echo) sseData(res, chunk(m.echo.text, wantLp ? m.echo.logprobs ?? [] : null, null));
    },
    onDelta(m) {
      if (env.stream) sseData(res, chunk(m.text, wantLp && m.logprob ? [m.logprob] : null, null));
      else {
        text += m.text;
        if (m.logprob) lps.push(m.logprob);
      }
    },
    onEnd(m) {
      const finish = m.finishReason === "abort" ? "stop" : m.finishReason;
      if (env.stream) {
        sseData(res, chunk("", null, finish));
        if (env.includeUsage) sseData(res, { id, object: "text_completion", created, model, choices: [], usage: usage(promptTokens, m) });
        sseDone(res);
        return;
      }
      sendJson(res, 200, {
        id, object: "text_completion", created, model,
        choices: [{ index: 0, text, logprobs: wantLp ? logprobsBody(lps) : null, finish_reason: finish }],
        usage: usage(promptTokens, m),
      });
    },
  }, timeoutMs);
}
