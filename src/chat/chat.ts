/**
 * chat() / chatStream(): the official `model.chat(tokenizer, history)` in TypeScript — build the prompt
 * (prompt.ts), generate with the model's generation_config, return the reply (xverse-facts §4c).
 *
 * EOS handling: generate() decodes with skip_special_tokens, as the official non-streaming path does; the
 * streaming path additionally removes the eos token's text from each delta, as v2's `chunk.replace(eos, "")`
 * does. v1's streaming code used `chunk.rstrip(eos_token)`, which is Python's *character-set* rstrip: it strips
 * any trailing characters from {<, |, e, n, d, o, f, t, x, >} and so can eat real letters ("then" → "th").
 * That is a bug, and deliberately not reproduced: both formats get the v2 behaviour.
 *
 * Deltas are per token (UTF-8 safe), finer than transformers' TextIteratorStreamer, which holds text back to
 * the last space; the concatenated text is the same.
 */
import type { GenerationConfig } from "../config.js";
import { samplingOptions, type SamplingRequest } from "../generate/sampling.js";
import { generate, type FinishReason } from "../generate/generate.js";
import type { XverseModel } from "../model/xverse.js";
import type { KvSequence } from "../kv/sequence.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { XverseError } from "../errors.js";
import { constrainedJsonHook, constrainedToolCallHook } from "./constrained.js";
import { assertSupportedSchema } from "./schema-check.js";
import type { JsonSchema } from "./schema.js";
import type { PrefixLimits } from "./json-prefix.js";
import { parseToolCall, ToolCallStream, type ParsedReply } from "./parse.js";
import { buildPrompt, turnEndId, type ChatSettings } from "./prompt-core.js";
import { normalizeTools, type ToolSpec } from "./tools.js";
import type { BuiltPrompt, ChatFormat, ChatMessage } from "./types.js";

export interface ChatOptions extends SamplingRequest {
  /** v1, v2 or template (default: the directory's choice, else its chat_template, else v2). */
  format?: ChatFormat | string | null;
  /** A system prompt put first unless the history already starts with one (v2 / template only). */
  system?: string;
  /** Tools in OpenAI or XVERSE plugin form: the plugin block goes into the first user message. */
  tools?: unknown;
  /** The time the plugin block states (default now). */
  now?: Date;
  /** tokenizer_config.json's chat settings (loadChatSettings(dir)): chat_template, add_bos_token. */
  settings?: ChatSettings;
  addBos?: boolean;
  /** The model's generation_config.json; its values are the defaults below. */
  generationConfig?: GenerationConfig;
  maxNewTokens?: number;
  stopStrings?: string[];
  signal?: AbortSignal;
  /** Push the reply onto `history` as an assistant message. Default false: the history is never changed. */
  appendToHistory?: boolean;
  /**
   * Constrain tool calls to the tools' schemas: true = once the model writes <|startofthink|>, "force" = the
   * reply must be a call. Only with `tools`.
   */
  constrainToolCalls?: boolean | "force";
  /** Bounds on what a constrained call may contain (string length, array items…): see PrefixLimits. */
  constrainLimits?: Partial<PrefixLimits>;
  /**
   * Structured output: the reply is one JSON object (json_object) or a value `schema` accepts (json_schema; the
   * supported keywords are in schema-check.ts, others throw), closed within maxNewTokens. ChatResult.json holds
   * the parsed value. Not together with constrainToolCalls.
   */
  responseFormat?: { type: "text" } | { type: "json_object" } | { type: "json_schema"; schema: JsonSchema };
  /**
   * A KV sequence kept across turns (model.createPool().sequence(model.ctxSize)): each turn computes only what
   * the previous turns did not leave in it — the new message — instead of the whole history.
   */
  cache?: KvSequence;
  /** Sees the built prompt before generation starts (e.g. to report its length). */
  onPrompt?: (prompt: BuiltPrompt) => void;
}

export interface ChatResult {
  /** The reply as the official chat() returns it (special tokens skipped, call markup included). */
  text: string;
  /** The reply split into text and tool call. */
  reply: ParsedReply;
  /** "tool_calls" when generation stopped at the end of a tool call. */
  finishReason: FinishReason | "tool_calls";
  prompt: BuiltPrompt;
  /** The generated ids (eos included when it ended the reply). */
  ids: number[];
  /** Prompt tokens taken from the KV cache (earlier turns) rather than computed. */
  cachedTokens: number;
  /** With a JSON responseFormat: the parsed reply (undefined when it was cut by maxNewTokens and does not parse). */
  json?: unknown;
}

function withSystem(history: readonly ChatMessage[], system: string | undefined): readonly ChatMessage[] {
  if (system === undefined || history[0]?.role === "system") return history;
  return [{ role: "system", content: system }, ...history];
}

/** Streams the reply's text deltas; the generator's return value is the full ChatResult. */
export async function* chatStream(
  model: XverseModel,
  tokenizer: Tokenizer,
  history: ChatMessage[],
  options: ChatOptions = {},
): AsyncGenerator<string, ChatResult> {
  const gc = options.generationConfig;
  const tools: ToolSpec[] = options.tools === undefined || options.tools === null ? [] : normalizeTools(options.tools);
  const requested = options.maxNewTokens ?? gc?.maxNewTokens ?? 2048;
  const prompt = buildPrompt(tokenizer, withSystem(history, options.system), {
    format: options.format,
    config: { ...model.config, maxPositionEmbeddings: model.ctxSize },
    generationConfig: gc,
    maxNewTokens: requested,
    settings: options.settings,
    tools: tools.length ? tools : undefined,
    now: options.now,
    addBos: options.addBos,
  });
  options.onPrompt?.(prompt);

  const eosIds = gc?.eosTokenIds.length ? gc.eosTokenIds : model.config.eosTokenIds.length ? model.config.eosTokenIds : [turnEndId(tokenizer, {})];
  const eosText = tokenizer.idToToken(eosIds[0]) ?? "";
  // the model cannot attend past its positions: leave the reply the room the prompt leaves
  const maxNew = Math.max(1, Math.min(requested, (options.cache?.maxTokens ?? model.ctxSize) - prompt.ids.length));
  const rf = options.responseFormat;
  const json = rf !== undefined && rf.type !== "text";
  if (json && tools.length && options.constrainToolCalls) {
    throw new XverseError("bad_argument", "chat: responseFormat JSON and constrainToolCalls cannot both constrain one reply: pick one");
  }
  if (rf?.type === "json_schema") assertSupportedSchema(rf.schema, "chat responseFormat.schema");
  const hook = json
    ? constrainedJsonHook(tokenizer, rf.type === "json_schema" ? rf.schema : null, { eosTokenIds: eosIds, limits: options.constrainLimits, maxNewTokens: maxNew })
    : tools.length && options.constrainToolCalls
      ? constrainedToolCallHook(tokenizer, tools, { force: options.constrainToolCalls === "force", eosTokenIds: eosIds, limits: options.constrainLimits, maxNewTokens: maxNew })
      : undefined;

  let cachedTokens = 0;
  const it = generate(model, tokenizer, prompt.ids, {
    maxNewTokens: maxNew,
    ...samplingOptions(options, gc),
    eosTokenIds: eosIds,
    stopStrings: options.stopStrings,
    signal: options.signal,
    logitsHook: hook,
    cache: options.cache,
    onPrefill: (n) => (cachedTokens = n),
    // the reply is decode(reply ids), as the official chat decodes it: no leading space carried over from the prompt
    continuation: false,
  });
  const calls = tools.length ? new ToolCallStream() : null;
  const ids: number[] = [];
  let text = "";
  let finishReason: ChatResult["finishReason"] = "length";
  let finished = false;
  try {
    for (;;) {
      const r = await it.next();
      if (r.done) {
        finishReason = r.value.finishReason;
        finished = true;
        break;
      }
      ids.push(r.value.id);
      const delta = eosText ? r.value.text.split(eosText).join("") : r.value.text;
      if (delta) {
        text += delta;
        yield delta;
      }
      // a finished call ends the turn: the caller runs the tool and answers with an exec message
      if (calls?.push(delta).call) {
        finishReason = "tool_calls";
        break;
      }
    }
  } finally {
    if (!finished) await it.return(undefined as never);
  }
  if (options.appendToHistory) history.push({ role: "assistant", content: text });
  const result: ChatResult = { text, reply: parseToolCall(text), finishReason, prompt, ids, cachedTokens };
  if (json) {
    try { result.json = JSON.parse(text); } catch { /* cut by maxNewTokens: json stays undefined */ }
  }
  return result;
}

/** Runs a whole turn and returns everything about it. */
export async function chatTurn(model: XverseModel, tokenizer: Tokenizer, history: ChatMessage[], options: ChatOptions = {}): Promise<ChatResult> {
  const it = chatStream(model, tokenizer, history, options);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/** The official `model.chat(tokenizer, history)`: the reply text. */
export async function chat(model: XverseModel, tokenizer: Tokenizer, history: ChatMessage[], options: ChatOptions = {}): Promise<string> {
  return (await chatTurn(model, tokenizer, history, options)).text;
}
