/**
 * A cheap bound on prompt size, checked before anything is tokenized. Tokenizing runs on the engine thread, in
 * the decode loop every running stream shares: a 4 MB prompt took ~2.3 s there just to learn it was too long,
 * and eight of them stalled a small request for 16 s. No token stands for more characters than the longest vocab
 * entry, so a text longer than ctx × that many characters cannot fit; the bound keeps a margin of SLACK for
 * normalizers that shorten text (NFKC composes a Hangul jamo triple into one syllable), so it never refuses a
 * prompt that would have fit, and tokenizing what passes costs at most a few hundred ms.
 */
import type { ChatMessage } from "../chat/types.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { ApiError } from "./errors.js";

const SLACK = 4;

export class PromptBound {
  /** Most UTF-16 units one token stands for (the longest vocab entry; byte tokens like <0x41> over-count). */
  readonly maxTokenChars: number;
  /** Characters beyond which a text cannot fit in the context, whatever it contains. */
  readonly maxChars: number;

  constructor(tok: Tokenizer, readonly ctx: number) {
    let m = 1;
    for (let i = 0; i < tok.vocabSize; i++) m = Math.max(m, tok.idToToken(i)?.length ?? 0);
    this.maxTokenChars = m;
    this.maxChars = ctx * m * SLACK;
  }

  /** A completion prompt: refused before tokenizing when it is certainly over the context. */
  checkText(text: string, param: string): void {
    if (text.length <= this.maxChars) return;
    throw new ApiError(400, `This model's maximum context length is ${this.ctx} tokens, but ${param} has ${text.length} characters: `
      + `at most ${this.maxTokenChars} characters per token, that is over ${Math.floor(text.length / this.maxTokenChars)} tokens; shorten it`,
    param, "context_length_exceeded");
  }

  /**
   * Chat messages: the newest must fit on its own (else 400, before tokenizing); older non-system messages lying
   * wholly beyond the bound counting from the newest are dropped here, as the prompt builder (which drops the
   * oldest turns first to fit its token budget) would drop them anyway — only after tokenizing all of them.
   */
  trimChat(messages: readonly ChatMessage[]): ChatMessage[] {
    const last = messages.length - 1;
    if (last < 0) return [];
    this.checkText(messages[last].content, `messages[${last}].content`);
    let total = 0, keepFrom = 0;
    for (let i = last; i >= 0; i--) {
      if (messages[i].role === "system") continue;
      total += messages[i].content.length;
      if (total > this.maxChars) { keepFrom = i + 1; break; }
    }
    if (keepFrom === 0) return messages.slice();
    // start the kept history at a user turn (templates may refuse an assistant message without its question)
    while (keepFrom < last && messages[keepFrom].role !== "user") keepFrom++;
    return messages.filter((m, i) => i >= keepFrom || m.role === "system");
  }
}
