/**
 * Chat and text generation against any OpenAI-compatible server (`xverse serve`, vLLM, llama.cpp's llama-server)
 * instead of a local model: what `xverse chat --endpoint URL` and `xverse generate --endpoint URL` run. Streams
 * over SSE with plain fetch (no client library at run time). The conversation stays in XVERSE's shape
 * (ChatMessage, `exec` turns, tool calls written as XVERSE call markup) so /save files are the same as with a
 * local model; it is translated to OpenAI messages per request (`exec` → `tool`, a call → `tool_calls`).
 */
import { XverseError } from "../errors.js";
import type { SamplingRequest } from "../generate/sampling.js";
import { parseToolCall } from "./parse.js";
import { formatToolCall, type ToolSpec } from "./tools.js";
import type { ChatMessage } from "./types.js";

export interface RemoteOptions extends SamplingRequest {
  /** Server base URL ("http://host:8000", with or without /v1). */
  endpoint: string;
  apiKey?: string;
  /** The `model` field; default: the first id GET /v1/models lists. */
  model?: string;
  maxNewTokens?: number;
  stopStrings?: string[];
  signal?: AbortSignal;
}

export interface RemoteResult {
  /** The reply as XVERSE history holds it (a tool call as XVERSE call markup after any text). */
  text: string;
  finishReason: string;
  call: { name: string; arguments: Record<string, unknown> } | null;
  promptTokens: number;
  completionTokens: number;
  model: string;
}

/** "http://h:8000", "http://h:8000/", "http://h:8000/v1" → "http://h:8000/v1". */
export function apiBase(url: string): string {
  const u = url.replace(/\/+$/, "");
  return /\/v1$/.test(u) ? u : `${u}/v1`;
}

type Obj = Record<string, unknown>;

/** XVERSE history → OpenAI messages: exec → tool (answering the last call), calls in assistant text → tool_calls. */
export function toOpenAIMessages(history: readonly ChatMessage[], system?: string): Obj[] {
  const out: Obj[] = [];
  if (system !== undefined && history[0]?.role !== "system") out.push({ role: "system", content: system });
  let callN = 0;
  for (const m of history) {
    if (m.role === "exec" || m.role === "tool") {
      out.push({ role: "tool", tool_call_id: `call_${callN}`, content: m.content });
    } else if (m.role === "assistant") {
      const r = parseToolCall(m.content);
      if (r.call) {
        callN++;
        out.push({ role: "assistant", content: r.text || null, tool_calls: [{ id: `call_${callN}`, type: "function", function: { name: r.call.name, arguments: JSON.stringify(r.call.arguments) } }] });
      } else out.push({ role: "assistant", content: m.content });
    } else out.push({ role: m.role, content: m.content });
  }
  return out;
}

function samplingBody(o: RemoteOptions): Obj {
  const greedy = o.greedy === true || o.temperature === 0;
  return {
    ...(o.maxNewTokens !== undefined && { max_tokens: o.maxNewTokens }),
    ...(greedy ? { temperature: 0 } : o.temperature !== undefined && { temperature: o.temperature }),
    ...(!greedy && o.topP !== undefined && { top_p: o.topP }),
    // not OpenAI's, but vLLM, llama.cpp and xverse serve take them
    ...(!greedy && o.topK !== undefined && { top_k: o.topK }),
    ...(o.repetitionPenalty !== undefined && { repetition_penalty: o.repetitionPenalty }),
    ...(o.seed !== undefined && { seed: o.seed }),
    ...(o.stopStrings?.length && { stop: o.stopStrings }),
  };
}

async function request(o: RemoteOptions, path: string, body?: Obj): Promise<Response> {
  const url = apiBase(o.endpoint) + path;
  let res: Response;
  try {
    res = await fetch(url, {
      method: body ? "POST" : "GET",
      headers: { "Content-Type": "application/json", ...(o.apiKey && { Authorization: `Bearer ${o.apiKey}` }) },
      body: body ? JSON.stringify(body) : undefined,
      signal: o.signal,
    });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new XverseError("endpoint", `cannot reach ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message} (is the server running? check --endpoint)`);
  }
  if (!res.ok) {
    const text = await res.text();
    let msg = text.slice(0, 500);
    try { msg = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? msg; } catch { /* not JSON */ }
    const hint = res.status === 401 ? " (pass --api-key or set XVERSE_API_KEY)" : "";
    throw new XverseError("endpoint", `${url} answered ${res.status}: ${msg}${hint}`);
  }
  return res;
}

/** The first model id the server lists (what `model` defaults to). */
export async function remoteModel(o: RemoteOptions): Promise<string> {
  if (o.model) return o.model;
  const j = (await (await request(o, "/models")).json()) as { data?: { id?: string }[] };
  const id = j.data?.[0]?.id;
  if (typeof id !== "string") throw new XverseError("endpoint", `${apiBase(o.endpoint)}/models lists no model: pass --served-model / model explicitly`);
  return id;
}

/** The data payloads of an SSE response, as they arrive. */
async function* sseData(res: Response): AsyncGenerator<Obj> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let at: number;
    while ((at = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, at);
      buf = buf.slice(at + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        const j = JSON.parse(data) as Obj;
        if (j.error) throw new XverseError("endpoint", `the server failed mid-reply: ${(j.error as { message?: string }).message ?? JSON.stringify(j.error)}`);
        yield j;
      }
    }
  }
}

/** Streams a chat reply's text deltas from the server; returns the whole turn. */
export async function* remoteChatStream(history: readonly ChatMessage[], o: RemoteOptions & { system?: string; tools?: readonly ToolSpec[] }): AsyncGenerator<string, RemoteResult> {
  const model = await remoteModel(o);
  const tools = o.tools?.length ? o.tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.schema } })) : undefined;
  const res = await request(o, "/chat/completions", {
    model, messages: toOpenAIMessages(history, o.system), stream: true, stream_options: { include_usage: true },
    ...samplingBody(o), ...(tools && { tools }),
  });
  let text = "", finishReason = "stop", promptTokens = 0, completionTokens = 0;
  const calls: { name: string; args: string }[] = [];
  try {
    for await (const chunk of sseData(res)) {
      const usage = chunk.usage as { prompt_tokens?: number; completion_tokens?: number } | undefined;
      if (usage) { promptTokens = usage.prompt_tokens ?? 0; completionTokens = usage.completion_tokens ?? 0; }
      const choice = (chunk.choices as Obj[] | undefined)?.[0];
      if (!choice) continue;
      const delta = (choice.delta ?? {}) as { content?: string | null; tool_calls?: { index?: number; function?: { name?: string; arguments?: string } }[] };
      if (delta.content) { text += delta.content; yield delta.content; }
      for (const tc of delta.tool_calls ?? []) {
        const i = tc.index ?? 0;
        calls[i] ??= { name: "", args: "" };
        calls[i].name += tc.function?.name ?? "";
        calls[i].args += tc.function?.arguments ?? "";
      }
      if (choice.finish_reason) finishReason = choice.finish_reason as string;
    }
  } catch (e) {
    if ((e as Error).name !== "AbortError") throw e;
    finishReason = "abort";
  }
  let call: RemoteResult["call"] = null;
  if (calls[0]?.name) {
    let args: Record<string, unknown> = {};
    try { args = JSON.parse(calls[0].args || "{}"); } catch { /* a cut call: keep its name, empty arguments */ }
    call = { name: calls[0].name, arguments: args };
    text += formatToolCall(call.name, call.arguments);
  }
  return { text, finishReason, call, promptTokens, completionTokens, model };
}

/** Streams a completion of `prompt` (text continuation, /v1/completions); returns the whole result. */
export async function* remoteCompletionStream(prompt: string, o: RemoteOptions): AsyncGenerator<string, RemoteResult> {
  const model = await remoteModel(o);
  const res = await request(o, "/completions", { model, prompt, stream: true, stream_options: { include_usage: true }, ...samplingBody(o) });
  let text = "", finishReason = "stop", promptTokens = 0, completionTokens = 0;
  for await (const chunk of sseData(res)) {
    const usage = chunk.usage as { prompt_tokens?: number; completion_tokens?: number } | undefined;
    if (usage) { promptTokens = usage.prompt_tokens ?? 0; completionTokens = usage.completion_tokens ?? 0; }
    const choice = (chunk.choices as Obj[] | undefined)?.[0];
    if (!choice) continue;
    if (typeof choice.text === "string" && choice.text) { text += choice.text; yield choice.text; }
    if (choice.finish_reason) finishReason = choice.finish_reason as string;
  }
  return { text, finishReason, call: null, promptTokens, completionTokens, model };
}
