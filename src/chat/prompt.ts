/**
 * buildPrompt() and the chat settings (prompt-core.ts, which browsers share), plus reading tokenizer_config.json
 * from a model directory in Node.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readJsonFile } from "../config.js";
import { chatSettingsFromJson, NO_CHAT_SETTINGS, type ChatSettings } from "./prompt-core.js";

export * from "./prompt-core.js";

/** Reads tokenizer_config.json from a model directory (absent file → no template, no BOS). */
export function loadChatSettings(dir: string): ChatSettings {
  const path = join(dir, "tokenizer_config.json");
  if (!existsSync(path)) return NO_CHAT_SETTINGS;
  return chatSettingsFromJson(readJsonFile(path));
}
