/** Chat: XVERSE prompt formats, chat()/chatStream(), function calling. */
export * from "./types.js";
export { buildV1, buildV2, type XverseBuildOptions } from "./prompt-xverse.js";
export { buildFromTemplate, renderTemplate, type TemplateOptions } from "./template.js";
export { buildPrompt, inputBudget, loadChatSettings, resolveChatFormat, turnEndId, NO_CHAT_SETTINGS, type ChatSettings, type PromptOptions } from "./prompt.js";
export {
  normalizeTools, toolPrompt, withTools, formatToolCall, formatNow, pyJson, THINK_START, THINK_END, TOOL_PROMPT_INTRO,
  type ToolSpec, type OpenAITool, type XversePlugin, type XversePluginParam,
} from "./tools.js";
export { parseToolCall, parseCallBody, ToolCallStream, type ParsedReply, type ToolCall } from "./parse.js";
export { validateValue, type JsonSchema } from "./schema.js";
export { compileSchema, CallRecognizer, DEFAULT_LIMITS, documentGrammar, resolveRef, type PrefixLimits } from "./json-prefix.js";
export { schemaProblems } from "./schema-check.js";
export { constrainedToolCallHook, constrainedJsonHook, JSON_LIMITS, vocabPieces, type ConstrainedHook, type ConstrainedHookOptions } from "./constrained.js";
export { minCompletion } from "./json-budget.js";
export { chat, chatStream, chatTurn, type ChatOptions, type ChatResult } from "./chat.js";
export { loadChatContext, readMessagesFile, readToolsFile, parseMessages, writeJsonFile, parseNow, type ChatContext } from "./files.js";
