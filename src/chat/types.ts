/** Shared chat types: messages as the official `model.chat()` takes them, and what a prompt builder returns. */

/**
 * XVERSE's roles. `exec` carries a tool result (the official demo's name for it); OpenAI's `tool` is accepted
 * as an alias and treated as `exec`.
 */
export type ChatRole = "system" | "user" | "assistant" | "exec" | "tool";

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** v1 / v2: XVERSE's two `_build_chat_input` generations (xverse-facts §4a/§4b); template: tokenizer_config's jinja. */
export type ChatFormat = "v1" | "v2" | "template";

export const CHAT_FORMATS: readonly ChatFormat[] = ["v1", "v2", "template"];

export interface BuiltPrompt {
  /** The token ids the model sees. */
  ids: number[];
  /**
   * The prompt as text: the builder's pieces joined, with the eos token's text where its id closes a turn.
   * Where a piece was cut to fit the budget, that piece is the decode of the ids kept.
   */
  text: string;
  format: ChatFormat;
  /** The input-token budget the builder worked with. */
  budget: number;
  /** True when older turns were dropped or the newest message was cut. */
  truncated: boolean;
}
