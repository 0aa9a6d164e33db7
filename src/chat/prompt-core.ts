/**
 * buildPrompt(): messages → the exact ids the model sees, in the format the caller or the model directory
 * chooses: XVERSE v1 / v2 (built in code, as the checkpoints' modeling_xverse.py does) or tokenizer_config.json's
 * jinja chat_template. Precedence: explicit `format` → config.json's `chat_format` → a chat_template → v2.
 * No file access, so browsers use it too; prompt.ts adds reading tokenizer_config.json in Node.
 */
import type { GenerationConfig, XverseConfig } from "../config-parse.js";
import { XverseError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { buildV1, buildV2 } from "./prompt-xverse.js";
import { buildFromTemplate } from "./template.js";
import { normalizeTools, withTools, type ToolSpec } from "./tools.js";
import { CHAT_FORMATS, type BuiltPrompt, type ChatFormat, type ChatMessage } from "./types.js";

/** What tokenizer_config.json says about chat. */
export interface ChatSettings {
  chatTemplate: string | null;
  /** add_bos_token: true for Llama-style tokenizers (the embedded stories260K), false/absent for XVERSE. */
  addBosToken: boolean;
  bosToken: string | null;
  eosToken: string | null;
}

export const NO_CHAT_SETTINGS: ChatSettings = Object.freeze({ chatTemplate: null, addBosToken: false, bosToken: null, eosToken: null });

function tokenText(v: unknown): string | null {
  if (typeof v === "string") return v;
  // transformers also writes AddedToken objects: {"content": "<s>", …}
  if (v && typeof v === "object" && typeof (v as { content?: unknown }).content === "string") return (v as { content: string }).content;
  return null;
}

/** tokenizer_config.json's parsed object → its chat settings (template, add_bos_token, bos / eos text). */
export function chatSettingsFromJson(raw: Record<string, unknown>): ChatSettings {
  let tpl: unknown = raw.chat_template;
  if (Array.isArray(tpl)) {
    // the named-template list form: prefer "default"
    const named = tpl as { name?: string; template?: string }[];
    tpl = (named.find((t) => t.name === "default") ?? named[0])?.template;
  }
  return {
    chatTemplate: typeof tpl === "string" && tpl.trim() ? tpl : null,
    addBosToken: raw.add_bos_token === true,
    bosToken: tokenText(raw.bos_token),
    eosToken: tokenText(raw.eos_token),
  };
}

/** Chooses the format: explicit → the directory's recorded `chat_format` → a chat_template → v2. */
export function resolveChatFormat(explicit: string | null | undefined, recorded: string | null | undefined, chatTemplate: string | null | undefined): ChatFormat {
  const pick = explicit ?? recorded ?? (chatTemplate ? "template" : "v2");
  if (!CHAT_FORMATS.includes(pick as ChatFormat)) {
    const where = explicit ? "format" : "config.json chat_format";
    throw new XverseError("bad_format", `${where} must be v1, v2 or template, got "${pick}"`);
  }
  if (pick === "template" && !chatTemplate) {
    throw new XverseError("bad_format", "format template needs a chat_template in tokenizer_config.json, and this model has none: use v1 or v2");
  }
  return pick as ChatFormat;
}

/**
 * max_input_tokens as the official builders compute it: max(max_pos // 2, max_pos − max_new_tokens), and for v2
 * also at most config.max_tokenizer_truncation (when the config has it). Templates use the v1 rule.
 */
export function inputBudget(format: ChatFormat, maxPositionEmbeddings: number, maxNewTokens: number, maxTokenizerTruncation: number | null = null): number {
  const b = Math.max(Math.floor(maxPositionEmbeddings / 2), maxPositionEmbeddings - maxNewTokens);
  return format === "v2" && maxTokenizerTruncation !== null ? Math.min(maxTokenizerTruncation, b) : b;
}

export interface PromptOptions {
  /** v1, v2 or template; default: see resolveChatFormat. */
  format?: ChatFormat | string | null;
  config?: Pick<XverseConfig, "maxPositionEmbeddings" | "maxTokenizerTruncation" | "chatFormat" | "eosTokenIds">;
  generationConfig?: Pick<GenerationConfig, "maxNewTokens" | "eosTokenIds">;
  /** The max_new_tokens the budget reserves room for; default generation_config's (XVERSE: 2048). */
  maxNewTokens?: number;
  /** tokenizer_config.json's chat settings (loadChatSettings). */
  settings?: ChatSettings;
  /** Tools (OpenAI or XVERSE plugin form): the plugin block goes in front of the first user message. */
  tools?: unknown;
  /** The time the plugin block states (default: now). */
  now?: Date;
  /** Prepend BOS: default tokenizer_config's add_bos_token (false for XVERSE). */
  addBos?: boolean;
}

/** The id that closes an assistant turn: generation_config's eos, else config.json's, else the tokenizer's. */
export function turnEndId(tok: Tokenizer, opts: Pick<PromptOptions, "config" | "generationConfig">): number {
  const id = opts.generationConfig?.eosTokenIds[0] ?? opts.config?.eosTokenIds[0] ?? tok.eosId;
  if (id === null || id === undefined) throw new XverseError("no_eos", "this model names no eos token (config.json, generation_config.json or tokenizer.json): the chat formats need one");
  return id;
}

export function buildPrompt(tok: Tokenizer, messages: readonly ChatMessage[], opts: PromptOptions = {}): BuiltPrompt {
  if (!Array.isArray(messages) || messages.length === 0) throw new XverseError("bad_messages", "messages must be a non-empty array of {role, content}");
  const settings = opts.settings ?? NO_CHAT_SETTINGS;
  const format = resolveChatFormat(opts.format, opts.config?.chatFormat, settings.chatTemplate);
  const maxPos = opts.config?.maxPositionEmbeddings ?? 8192;
  const maxNew = opts.maxNewTokens ?? opts.generationConfig?.maxNewTokens ?? 2048;
  const budget = inputBudget(format, maxPos, maxNew, opts.config?.maxTokenizerTruncation ?? null);
  const tools: ToolSpec[] = opts.tools === undefined || opts.tools === null ? [] : normalizeTools(opts.tools);

  if (format === "template") {
    return buildFromTemplate(tok, messages, {
      template: settings.chatTemplate!,
      budget,
      bosToken: settings.bosToken ?? (tok.bosId !== null ? tok.idToToken(tok.bosId) : null),
      eosToken: settings.eosToken ?? (tok.eosId !== null ? tok.idToToken(tok.eosId) : null),
      tools: tools.length ? tools.map((t) => ({ type: "function", function: { name: t.name, description: t.description, parameters: t.schema } })) : null,
    });
  }
  const msgs = tools.length ? withTools(messages, tools, opts.now) : messages;
  const addBos = opts.addBos ?? settings.addBosToken;
  const built = { budget, eosId: turnEndId(tok, opts), bosId: addBos ? tok.bosId : null };
  return format === "v1" ? buildV1(tok, msgs, built) : buildV2(tok, msgs, built);
}
