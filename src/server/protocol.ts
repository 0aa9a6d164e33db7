/**
 * What the HTTP thread and the generation worker say to each other. Only plain, structured-cloneable data
 * crosses the boundary: validated requests go in, token deltas and results come out.
 */
import type { ChatMessage } from "../chat/types.js";

/** Sampling fields after validation; undefined = the model's generation_config.json decides. */
export interface Sampling {
  /** null: as many as the context leaves (chat) — completions always set it. */
  maxTokens: number | null;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  /** OpenAI's penalties (−2 … 2) and logit_bias (token id → −100 … 100). */
  presencePenalty?: number;
  frequencyPenalty?: number;
  logitBias?: Record<number, number>;
  /** Choices to generate (chat: up to MAX_CHOICES, sharing the prompt's KV blocks; completions: 1). */
  n?: number;
  stop: string[];
  /** vLLM's extension: keep going past eos (benchmarks that need exact lengths). */
  ignoreEos: boolean;
}

export interface OpenAIFunctionTool {
  type: "function";
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
}

/** none: tools are left out of the prompt; auto: the model may call; required / {name}: it must (constrained). */
export type ToolChoice = "none" | "auto" | "required" | { name: string };

/** OpenAI's response_format after validation: json_object = any JSON object; json_schema = a value its schema accepts. */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; name: string; schema: Record<string, unknown> | null; strict: boolean };

export interface ChatJob {
  kind: "chat";
  messages: ChatMessage[];
  tools: OpenAIFunctionTool[];
  toolChoice: ToolChoice;
  /** Absent = text. */
  responseFormat?: ResponseFormat;
  /** OpenAI's logprobs + top_logprobs: null = off, k = that many alternatives per token. */
  logprobs: number | null;
  sampling: Sampling;
}

export interface CompletionJob {
  kind: "completion";
  prompt: string | number[];
  echo: boolean;
  /** Top-k alternatives per token (0 = just the chosen token's logprob); null = no logprobs. */
  logprobs: number | null;
  sampling: Sampling;
}

export type Job = ChatJob | CompletionJob;

/** The worker's KV pool, for /metrics. */
export interface KvUse {
  usedBlocks: number;
  cachedBlocks: number;
  capacityBlocks: number;
  blockSize: number;
  /** Bytes of the pool's allocated segments (it grows by segment up to its budget; a soak's baseline waits for it). */
  bytes?: number;
}

export interface ModelInfo {
  id: string;
  path: string;
  contextLength: number;
  /** KV cache type, bytes per token and budget, for the banner. */
  kv: string;
  vocabSize: number;
  backend: string;
  /** Weight formats of the layers' projections, most parameters first ("q4_k+q6_k", "bf16"), for /v1/models. */
  quantization?: string;
}

/** One generated token as the client sees it. */
export interface TokenLogprob {
  token: string;
  logprob: number | null;
  top: Record<string, number> | null;
  /** Code-point offset of the token's text in the returned text. */
  offset: number;
}

export type ToMain =
  | { type: "ready"; model: ModelInfo }
  | { type: "fatal"; message: string }
  | { type: "warning"; message: string }
  /** The worker's V8 heap, sent every second: RSS is one number for both threads, the heaps tell them apart. */
  | {
      type: "memory"; heapUsed: number; heapTotal: number; maxBatch: number; kv?: KvUse;
      /** Jobs the worker holds an abort controller for, and requests in its decode loop (both 0 when idle). */
      jobs?: number; decoding?: number;
    }
  | { type: "start"; id: number; promptTokens: number; maxTokens: number; echo?: { text: string; logprobs: TokenLogprob[] | null } }
  | { type: "delta"; id: number; text: string; logprob?: TokenLogprob; /** Choice index (n > 1); absent = 0. */ choice?: number }
  | {
      type: "end";
      id: number;
      finishReason: "stop" | "length" | "tool_calls" | "abort";
      completionTokens: number;
      /** Prompt tokens whose keys and values came from the KV pool (prefix reuse). */
      cachedTokens?: number;
      /** The reply text (for tool calls: the text before the call). */
      text: string;
      toolCall?: { name: string; arguments: string };
      /** Choice index (n > 1); absent = 0. */
      choice?: number;
      /** false: other choices of this request are still running (the request ends with the last one). */
      last?: boolean;
    }
  | { type: "error"; id: number; status: number; message: string; param: string | null; code: string | null }
  /** Answers to /tokenize and /detokenize (they bypass the generation queue). */
  | { type: "tokens"; id: number; tokens: number[]; pieces?: string[] }
  | { type: "text"; id: number; content: string };

export type ToWorker =
  | { type: "job"; id: number; job: Job }
  | { type: "abort"; id: number }
  | { type: "tokenize"; id: number; content: string; addSpecial: boolean; withPieces: boolean }
  | { type: "detokenize"; id: number; tokens: number[] };

/** A request answered at once, between decode steps, without a generation slot. */
export type ToolRequest = Extract<ToWorker, { type: "tokenize" | "detokenize" }>;
