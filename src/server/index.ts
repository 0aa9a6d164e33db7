/** The OpenAI-compatible server and its web pages. */
export { startServer, requestHandler, DEFAULT_MAX_BODY, type ServeOptions, type RunningServer } from "./http.js";
export { Scheduler, type SchedulerStats, type JobHandlers } from "./scheduler.js";
export { ApiError } from "./errors.js";
export { BatchDecoder } from "./batch.js";
export { parseChatRequest, parseCompletionRequest } from "./schema.js";
export type { Job, ChatJob, CompletionJob, Sampling, ToolChoice, ModelInfo } from "./protocol.js";
