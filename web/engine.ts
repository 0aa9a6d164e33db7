/**
 * What the views talk to: an engine that streams a chat reply or a text continuation. The server engine reads
 * the OpenAI-compatible API's SSE stream; the local engine (local-engine.ts) runs the model in this tab.
 */
import type { Message, ToolCallOut } from "./store.js";

export interface StreamEvents {
  onText(delta: string): void;
  onToolCalls?(calls: ToolCallOut[]): void;
  /** The completion token count, when the engine knows it exactly (the tokens/s line uses it). */
  onUsage?(completionTokens: number): void;
}

export interface ChatRequest {
  messages: Message[];
  system?: string;
  temperature: number;
  maxTokens: number;
  /** OpenAI tool specs, sent as is. */
  tools?: unknown[];
  signal: AbortSignal;
}

export interface CompletionRequest {
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  signal: AbortSignal;
}

export interface Engine {
  chat(req: ChatRequest, ev: StreamEvents): Promise<void>;
  complete(req: CompletionRequest, ev: StreamEvents): Promise<void>;
}

const KEY = "xverse-api-key";

export function apiHeaders(): Record<string, string> {
  const k = localStorage.getItem(KEY);
  return { "Content-Type": "application/json", ...(k ? { Authorization: "Bearer " + k } : {}) };
}

/** The API key box (only needed when the server runs with --api-key). */
export function apiKeyBox(input: HTMLInputElement): void {
  input.value = localStorage.getItem(KEY) ?? "";
  input.addEventListener("change", () => (input.value ? localStorage.setItem(KEY, input.value) : localStorage.removeItem(KEY)));
}

async function postJson(path: string, body: unknown, signal: AbortSignal): Promise<Response> {
  const res = await fetch(path, { method: "POST", headers: apiHeaders(), body: JSON.stringify(body), signal });
  if (!res.ok) {
    let msg = "HTTP " + res.status;
    try { msg = (await res.json()).error.message; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return res;
}

/** Each SSE "data:" payload as parsed JSON, until [DONE]; an error chunk becomes a thrown Error. */
export async function* readSse(res: Response): AsyncGenerator<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        const obj = JSON.parse(data);
        if (obj.error) throw new Error(obj.error.message);
        yield obj;
      }
    }
  }
}

export const serverEngine: Engine = {
  async chat(req, ev) {
    const messages: unknown[] = [];
    if (req.system) messages.push({ role: "system", content: req.system });
    for (const m of req.messages) messages.push(m.tool_calls?.length ? { role: m.role, content: m.content || null, tool_calls: m.tool_calls } : { role: m.role, content: m.content });
    const res = await postJson("/v1/chat/completions", {
      messages, stream: true, stream_options: { include_usage: true },
      temperature: req.temperature, max_tokens: req.maxTokens, ...(req.tools?.length ? { tools: req.tools } : {}),
    }, req.signal);
    const calls: ToolCallOut[] = [];
    for await (const chunk of readSse(res)) {
      if (chunk.usage) { ev.onUsage?.(chunk.usage.completion_tokens); continue; }
      const delta = chunk.choices?.[0]?.delta;
      if (delta?.content) ev.onText(delta.content);
      for (const c of delta?.tool_calls ?? []) {
        // streamed calls arrive by index, their arguments possibly in pieces
        const at = calls[c.index ?? calls.length] ??= { id: c.id, type: "function", function: { name: "", arguments: "" } };
        if (c.function?.name) at.function.name += c.function.name;
        if (c.function?.arguments) at.function.arguments += c.function.arguments;
        ev.onToolCalls?.(calls.map((x) => ({ ...x, function: { ...x.function } })));
      }
    }
  },
  async complete(req, ev) {
    const res = await postJson("/v1/completions", {
      prompt: req.prompt, stream: true, stream_options: { include_usage: true },
      max_tokens: req.maxTokens, temperature: req.temperature, top_k: req.topK, top_p: req.topP,
    }, req.signal);
    for await (const chunk of readSse(res)) {
      if (chunk.usage) { ev.onUsage?.(chunk.usage.completion_tokens); continue; }
      const c = chunk.choices?.[0];
      if (c?.text) ev.onText(c.text);
    }
  },
};
