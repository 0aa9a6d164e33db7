/**
 * Request bodies → jobs. Strict: unknown fields, wrong types and out-of-range values are 400s naming the field;
 * OpenAI fields this server cannot honour are accepted only at their neutral values (see validate.ts).
 */
import { formatToolCall } from "../chat/tools.js";
import type { ChatMessage } from "../chat/types.js";
import { badField } from "./errors.js";
import { schemaProblems } from "../chat/schema-check.js";
import type { ChatJob, CompletionJob, OpenAIFunctionTool, ResponseFormat, Sampling, ToolChoice } from "./protocol.js";
import { isObj, logitBias, obj, onlyKeys, optBool, optNumber, optString, stopList, type Obj } from "./validate.js";

export interface Envelope<J> {
  job: J;
  stream: boolean;
  includeUsage: boolean;
  /** The model name to echo back (the client's, or ours). */
  model: string | undefined;
}

/** Most choices one chat request may ask for (n): each is a full generation in the batch. */
export const MAX_CHOICES = 16;

const COMMON = ["model", "stream", "stream_options", "temperature", "top_p", "top_k", "max_tokens", "stop", "seed", "n", "user",
  "presence_penalty", "frequency_penalty", "logit_bias", "repetition_penalty", "ignore_eos"];
const CHAT_KEYS = [...COMMON, "messages", "tools", "tool_choice", "parallel_tool_calls", "max_completion_tokens", "response_format", "logprobs", "top_logprobs"];
const COMPLETION_KEYS = [...COMMON, "prompt", "echo", "logprobs", "best_of", "suffix"];

function sampling(o: Obj, maxTokensKey: string[]): Sampling {
  optString(o, "user"); // OpenAI's end-user id: checked, not used
  let maxTokens: number | null = null;
  for (const k of maxTokensKey) {
    const n = optNumber(o, k, { int: true, min: 0 });
    if (n !== undefined) maxTokens = n;
  }
  const seed = optNumber(o, "seed", { int: true });
  return {
    maxTokens,
    temperature: optNumber(o, "temperature", { min: 0, max: 2 }),
    topP: optNumber(o, "top_p", { min: 0, max: 1 }),
    // -1 is vLLM's "off"; 0 is ours (Hugging Face's)
    topK: (() => { const k = optNumber(o, "top_k", { int: true, min: -1 }); return k === -1 ? 0 : k; })(),
    repetitionPenalty: optNumber(o, "repetition_penalty", { min: 0.01, max: 10 }),
    seed,
    presencePenalty: optNumber(o, "presence_penalty", { min: -2, max: 2 }),
    frequencyPenalty: optNumber(o, "frequency_penalty", { min: -2, max: 2 }),
    logitBias: logitBias(o),
    n: optNumber(o, "n", { int: true, min: 1, max: MAX_CHOICES }),
    stop: stopList(o),
    ignoreEos: optBool(o, "ignore_eos") ?? false,
  };
}

function envelope(o: Obj): { stream: boolean; includeUsage: boolean; model: string | undefined } {
  const stream = optBool(o, "stream") ?? false;
  let includeUsage = false;
  if (o.stream_options !== undefined && o.stream_options !== null) {
    const so = obj(o.stream_options, "stream_options");
    onlyKeys(so, ["include_usage"], "stream_options.");
    includeUsage = optBool(so, "include_usage") ?? false;
  }
  return { stream, includeUsage, model: optString(o, "model") };
}

/** OpenAI content: a string, or an array of {type: "text", text} parts (images are refused). */
function content(v: unknown, param: string, nullable: boolean): string {
  if (v === null || v === undefined) {
    if (nullable) return "";
    throw badField(param, `${param} is required`, "missing_required_parameter");
  }
  if (typeof v === "string") return v;
  if (!Array.isArray(v)) throw badField(param, `${param} must be a string or an array of text parts`, "invalid_type");
  return v.map((p, i) => {
    const part = obj(p, `${param}[${i}]`);
    if (part.type !== "text" || typeof part.text !== "string") throw badField(`${param}[${i}]`, `${param}[${i}] must be {"type": "text", "text": string}: this model reads text only`, "invalid_type");
    return part.text;
  }).join("");
}

function message(v: unknown, i: number): ChatMessage {
  const p = `messages[${i}]`;
  const m = obj(v, p);
  const role = m.role;
  if (role === "system" || role === "developer") {
    onlyKeys(m, ["role", "content", "name"], `${p}.`);
    return { role: "system", content: content(m.content, `${p}.content`, false) };
  }
  if (role === "user") {
    onlyKeys(m, ["role", "content", "name"], `${p}.`);
    return { role: "user", content: content(m.content, `${p}.content`, false) };
  }
  if (role === "tool") {
    onlyKeys(m, ["role", "content", "tool_call_id", "name"], `${p}.`);
    optString(m, "tool_call_id", `${p}.`);
    // XVERSE's name for a tool result is `exec` (the official demo's role)
    return { role: "exec", content: content(m.content, `${p}.content`, false) };
  }
  if (role === "assistant") {
    onlyKeys(m, ["role", "content", "name", "tool_calls", "refusal"], `${p}.`);
    let text = content(m.content, `${p}.content`, m.tool_calls !== undefined);
    if (m.tool_calls !== undefined && m.tool_calls !== null) {
      if (!Array.isArray(m.tool_calls)) throw badField(`${p}.tool_calls`, `${p}.tool_calls must be an array`, "invalid_type");
      m.tool_calls.forEach((c, j) => {
        const q = `${p}.tool_calls[${j}]`;
        const call = obj(c, q);
        const fn = obj(call.function, `${q}.function`);
        const name = optString(fn, "name", `${q}.function.`);
        if (!name) throw badField(`${q}.function.name`, `${q}.function.name is required`, "missing_required_parameter");
        let args: unknown = {};
        const raw = optString(fn, "arguments", `${q}.function.`);
        try { args = raw ? JSON.parse(raw) : {}; } catch {
          throw badField(`${q}.function.arguments`, `${q}.function.arguments must be a JSON string`);
        }
        // the call goes back into history the way the model writes one (xverse-facts §6)
        text += formatToolCall(name, args);
      });
    }
    return { role: "assistant", content: text };
  }
  throw badField(`${p}.role`, `${p}.role must be one of system, user, assistant, tool; got ${JSON.stringify(role)}`);
}

function tools(v: unknown): OpenAIFunctionTool[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw badField("tools", "tools must be an array", "invalid_type");
  const names = new Set<string>();
  return v.map((t, i) => {
    const p = `tools[${i}]`;
    const o = obj(t, p);
    if (o.type !== "function") throw badField(`${p}.type`, `${p}.type must be "function"`);
    const fn = obj(o.function, `${p}.function`);
    onlyKeys(fn, ["name", "description", "parameters", "strict"], `${p}.function.`);
    const name = optString(fn, "name", `${p}.function.`);
    if (!name || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw badField(`${p}.function.name`, `${p}.function.name must be 1–64 letters, digits, _ or -`);
    if (names.has(name)) throw badField(`${p}.function.name`, `two tools are named "${name}"`);
    names.add(name);
    const description = optString(fn, "description", `${p}.function.`);
    const parameters = fn.parameters === undefined ? undefined : obj(fn.parameters, `${p}.function.parameters`);
    return { type: "function", function: { name, ...(description !== undefined && { description }), ...(parameters && { parameters }) } };
  });
}

function toolChoice(v: unknown, list: OpenAIFunctionTool[]): ToolChoice {
  if (v === undefined || v === null) return list.length ? "auto" : "none";
  if (v === "none" || v === "auto" || v === "required") {
    if (v !== "none" && !list.length) throw badField("tool_choice", `tool_choice "${v}" needs tools`);
    return v;
  }
  const o = obj(v, "tool_choice");
  const name = isObj(o.function) ? o.function.name : undefined;
  if (o.type !== "function" || typeof name !== "string") throw badField("tool_choice", 'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": …}}');
  if (!list.some((t) => t.function.name === name)) throw badField("tool_choice", `tool_choice names "${name}", which is not in tools`);
  return { name };
}

/** response_format: text, json_object, or json_schema {name, schema, strict, description} with a supported schema. */
function responseFormat(v: unknown): ResponseFormat {
  if (v === undefined || v === null) return { type: "text" };
  const rf = obj(v, "response_format");
  if (rf.type === "text" || rf.type === "json_object") {
    onlyKeys(rf, ["type"], "response_format.");
    return { type: rf.type };
  }
  if (rf.type !== "json_schema") throw badField("response_format.type", `response_format.type must be "text", "json_object" or "json_schema", got ${JSON.stringify(rf.type)}`);
  onlyKeys(rf, ["type", "json_schema"], "response_format.");
  const js = obj(rf.json_schema, "response_format.json_schema");
  onlyKeys(js, ["name", "description", "schema", "strict"], "response_format.json_schema.");
  const name = optString(js, "name", "response_format.json_schema.");
  if (!name || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) throw badField("response_format.json_schema.name", "response_format.json_schema.name must be 1–64 letters, digits, _ or -", name === undefined ? "missing_required_parameter" : "invalid_value");
  optString(js, "description", "response_format.json_schema.");
  const strict = js.strict === undefined || js.strict === null ? false : js.strict;
  if (typeof strict !== "boolean") throw badField("response_format.json_schema.strict", "response_format.json_schema.strict must be a boolean", "invalid_type");
  if (js.schema === undefined || js.schema === null) return { type: "json_schema", name, schema: null, strict };
  const schema = obj(js.schema, "response_format.json_schema.schema");
  const problems = schemaProblems(schema);
  if (problems.length) {
    throw badField("response_format.json_schema.schema", `response_format.json_schema.schema cannot be enforced: ${problems.join("; ")}`, "unsupported_schema");
  }
  return { type: "json_schema", name, schema, strict };
}

export function parseChatRequest(body: unknown): Envelope<ChatJob> {
  const o = obj(body, "body");
  onlyKeys(o, CHAT_KEYS);
  if (!Array.isArray(o.messages)) throw badField("messages", "messages must be a non-empty array", o.messages === undefined ? "missing_required_parameter" : "invalid_type");
  if (o.messages.length === 0) throw badField("messages", "messages must not be empty");
  const messages = o.messages.map(message);
  const logprobs = optBool(o, "logprobs") ?? false;
  const top = optNumber(o, "top_logprobs", { int: true, min: 0, max: 20 });
  if (top !== undefined && !logprobs) throw badField("top_logprobs", "top_logprobs needs logprobs: true");
  optBool(o, "parallel_tool_calls");
  const format = responseFormat(o.response_format);
  const list = tools(o.tools);
  const choice = toolChoice(o.tool_choice, list);
  if (format.type !== "text" && choice === "auto") {
    // one constraint at a time: "a call or a JSON document" is not a grammar the decoder has
    throw badField("response_format", `response_format ${format.type} with tools needs tool_choice "none" (answer in JSON) or "required" / a named tool (call a tool), not "auto"`, "unsupported_parameter");
  }
  return { ...envelope(o), job: { kind: "chat", messages, tools: list, toolChoice: choice, ...(format.type !== "text" && { responseFormat: format }), logprobs: logprobs ? top ?? 0 : null, sampling: sampling(o, ["max_tokens", "max_completion_tokens"]) } };
}

export function parseCompletionRequest(body: unknown): Envelope<CompletionJob> {
  const o = obj(body, "body");
  onlyKeys(o, COMPLETION_KEYS);
  let prompt: unknown = o.prompt;
  if (prompt === undefined || prompt === null) throw badField("prompt", "prompt is required", "missing_required_parameter");
  // a batch of one ([text] or [[ids]]) is one prompt; more are refused since n = 1
  if (Array.isArray(prompt) && prompt.length === 1 && (typeof prompt[0] === "string" || Array.isArray(prompt[0]))) prompt = prompt[0];
  if (Array.isArray(prompt)) {
    if (prompt.length === 0) throw badField("prompt", "prompt must not be an empty array");
    if (!prompt.every((t) => Number.isInteger(t) && (t as number) >= 0)) {
      throw badField("prompt", "prompt must be a string, an array of token ids (non-negative integers), or a batch of one of them", "invalid_type");
    }
  } else if (typeof prompt !== "string") {
    throw badField("prompt", "prompt must be a string or an array of token ids", "invalid_type");
  }
  const best = optNumber(o, "best_of", { int: true, min: 1 });
  if (best !== undefined && best !== 1) throw badField("best_of", "best_of must be 1", "unsupported_parameter");
  const suffix = optString(o, "suffix");
  if (suffix) throw badField("suffix", "suffix (fill-in-the-middle) is not supported", "unsupported_parameter");
  const s = sampling(o, ["max_tokens"]);
  if (s.n !== undefined && s.n !== 1) throw badField("n", `n must be 1 on /v1/completions (several choices: /v1/chat/completions), got ${s.n}`, "unsupported_parameter");
  if (s.maxTokens === null) s.maxTokens = 16; // OpenAI's default for completions
  const logprobs = optNumber(o, "logprobs", { int: true, min: 0, max: 20 }) ?? null;
  return { ...envelope(o), job: { kind: "completion", prompt: prompt as string | number[], echo: optBool(o, "echo") ?? false, logprobs, sampling: s } };
}

/** POST /tokenize (llama.cpp server): {content, add_special = false, with_pieces = false}. */
export function parseTokenize(body: unknown): { content: string; addSpecial: boolean; withPieces: boolean } {
  const o = obj(body, "body");
  onlyKeys(o, ["content", "add_special", "with_pieces", "model"]);
  const content = optString(o, "content");
  if (content === undefined) throw badField("content", "content is required: the text to tokenize", "missing_required_parameter");
  return { content, addSpecial: optBool(o, "add_special") ?? false, withPieces: optBool(o, "with_pieces") ?? false };
}

/** POST /detokenize (llama.cpp server): {tokens: [ids]}. */
export function parseDetokenize(body: unknown): number[] {
  const o = obj(body, "body");
  onlyKeys(o, ["tokens", "model"]);
  const t = o.tokens;
  if (!Array.isArray(t) || !t.every((x) => Number.isInteger(x) && (x as number) >= 0)) {
    throw badField("tokens", "tokens must be an array of token ids (non-negative integers)", t === undefined ? "missing_required_parameter" : "invalid_type");
  }
  return t as number[];
}
