/**
 * The library as browsers import it (bundled into dist/web by scripts/build-web.mjs): no Node built-ins anywhere
 * below this file — scripts/build-web.mjs builds it with platform "browser", which fails on a `node:` import.
 * Files come in through ByteReaders (a picked File, a URL with Range requests, bytes in memory).
 */
export { blobReader, bytesReader, fetchReader, readJson, readText, type ByteReader, type FetchReaderOptions } from "../io/byte-reader.js";
export { disposeModel, loadModelFiles, modelFilesAt, modelFilesFrom, weightFormats, type BrowserLoadOptions, type BrowserModel, type ModelFiles } from "./load.js";
export { pickBackend, type PickedBackend } from "./backend.js";
export { XverseModel } from "../model/xverse.js";
export { createWebGpuBackend } from "../backend/webgpu/index.js";
export { tsBackend } from "../backend/ts/index.js";
export type { Backend } from "../backend/backend.js";
export { generate, generateText, type GenerateOptions, type GeneratedToken, type GenerateResult } from "../generate/generate.js";
export { tokenizerFromJson } from "../tokenizer/from-json.js";
export { tokenizerFromGguf } from "../tokenizer/gguf-vocab.js";
export type { Tokenizer } from "../tokenizer/types.js";
export { buildPrompt, chatSettingsFromJson, type ChatSettings } from "../chat/prompt-core.js";
export { chatStream, chatTurn, type ChatOptions, type ChatResult } from "../chat/chat.js";
export { ToolCallStream, parseToolCall } from "../chat/parse.js";
export type { ChatMessage } from "../chat/types.js";
export { parseConfig, parseGenerationConfig, type XverseConfig, type GenerationConfig } from "../config-parse.js";
export { XverseError } from "../errors.js";
