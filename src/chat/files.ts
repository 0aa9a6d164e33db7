/**
 * Chat files on disk: a messages file (what `xverse prompt --messages` reads and the REPL's /save writes), a
 * tools file, and the chat context of a model path (tokenizer, config, generation config, tokenizer_config)
 * without loading any weights.
 */
import { readFileSync, statSync } from "node:fs";
import { loadConfig, loadGenerationConfig, parseConfig, parseGenerationConfig, type GenerationConfig, type XverseConfig } from "../config.js";
import { XverseError } from "../errors.js";
import { AtomicFile } from "../io/atomic.js";
import { ggufConfig } from "../io/gguf-model.js";
import { readGguf } from "../io/gguf.js";
import { isGgufPath, modelFileExists } from "../io/mapped-file.js";
import { openTokenizer } from "../tokenizer/auto.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { loadChatSettings, NO_CHAT_SETTINGS, type ChatSettings } from "./prompt.js";
import { normalizeTools, type ToolSpec } from "./tools.js";
import type { ChatMessage } from "./types.js";

const ROLES = ["system", "user", "assistant", "exec", "tool"];

/** Reads a JSON file ("-" = stdin), naming the file in errors. */
export function readJsonValue(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (e) {
    throw new XverseError("not_found", `cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new XverseError("bad_json", `${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** A messages array, or an object with "messages" (and optionally "tools"). */
export function parseMessages(v: unknown, where: string): ChatMessage[] {
  const list = v && typeof v === "object" && !Array.isArray(v) ? (v as { messages?: unknown }).messages : v;
  if (!Array.isArray(list)) throw new XverseError("bad_messages", `${where}: expected a JSON array of {"role": …, "content": …} (or {"messages": [...]})`);
  return list.map((m, i) => {
    const o = m as { role?: unknown; content?: unknown };
    if (!o || typeof o !== "object" || typeof o.role !== "string" || !ROLES.includes(o.role)) {
      throw new XverseError("bad_messages", `${where}: message ${i} needs "role": one of ${ROLES.join(", ")}`);
    }
    if (typeof o.content !== "string") throw new XverseError("bad_messages", `${where}: message ${i} needs "content" as a string`);
    return { role: o.role as ChatMessage["role"], content: o.content };
  });
}

export function readMessagesFile(path: string): { messages: ChatMessage[]; tools: unknown } {
  const v = readJsonValue(path);
  const tools = v && typeof v === "object" && !Array.isArray(v) ? (v as { tools?: unknown }).tools : undefined;
  return { messages: parseMessages(v, path), tools };
}

export function readToolsFile(path: string): ToolSpec[] {
  try {
    return normalizeTools(readJsonValue(path));
  } catch (e) {
    if (e instanceof XverseError && e.code === "bad_tools") throw new XverseError("bad_tools", `${path}: ${e.message}`);
    throw e;
  }
}

/** Writes JSON under a temp name and renames it into place (never a half-written file). */
export function writeJsonFile(path: string, value: unknown): void {
  const f = new AtomicFile(path);
  try {
    f.write(new TextEncoder().encode(JSON.stringify(value, null, 2) + "\n"));
    f.commit();
  } catch (e) {
    f.abort();
    throw e;
  }
}

export interface ChatContext {
  tokenizer: Tokenizer;
  config: XverseConfig;
  generationConfig: GenerationConfig;
  settings: ChatSettings;
}

/** What the prompt builders need from a model directory or .gguf file, without its weights. */
export function loadChatContext(path: string): ChatContext {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    // the stem of byte-split parts (x.gguf.aa …) does not exist itself
    if (!modelFileExists(path)) throw new XverseError("not_found", `model path ${path} does not exist (give a model directory or a .gguf file)`);
    isFile = true;
  }
  const tokenizer = openTokenizer(path);
  if (isFile && isGgufPath(path)) {
    const config = parseConfig(ggufConfig(readGguf(path)), path);
    return { tokenizer, config, generationConfig: parseGenerationConfig({}, config), settings: NO_CHAT_SETTINGS };
  }
  if (isFile) throw new XverseError("bad_model_path", `${path} is a file: give the model directory or a .gguf file`);
  const config = loadConfig(path);
  return { tokenizer, config, generationConfig: loadGenerationConfig(path, config), settings: loadChatSettings(path) };
}

/** "YYYY-MM-DD HH:MM:SS" (local time) or anything Date parses. */
export function parseNow(s: string): Date {
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(s.trim());
  const d = m ? new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] ?? 0)) : new Date(s);
  if (Number.isNaN(d.getTime())) throw new XverseError("bad_flag", `--now expects a time like "2007-03-09 07:02:15", got "${s}"`);
  return d;
}
