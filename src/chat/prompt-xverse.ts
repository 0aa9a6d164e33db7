/**
 * XVERSE's two official prompt builders (`_build_chat_input`), rebuilt token for token (xverse-facts §4a, §4b).
 * Both walk the history newest → oldest under a token budget, so a long history loses its oldest turns first,
 * and both close every past assistant turn with the eos *id* (never its text, which would be re-tokenized).
 * Neither adds BOS; `bosId` is only for non-XVERSE models whose tokenizer_config asks for one.
 */
import { XverseError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/types.js";
import type { BuiltPrompt, ChatMessage } from "./types.js";

export interface XverseBuildOptions {
  /** max_input_tokens as the official code computes it (see prompt.ts `inputBudget`). */
  budget: number;
  /** The id that closes each assistant turn: 3 for XVERSE; the tokenizer's / config's eos for other models. */
  eosId: number;
  /** Prepend this id (counted against the budget). XVERSE: none. */
  bosId?: number | null;
}

interface Piece {
  ids: number[];
  text: string;
}

const HUMAN = "Human: ";
const EXEC = "Exec: ";
const ASSISTANT = "Assistant: ";

function encoder(tok: Tokenizer): (text: string) => Piece {
  // XVERSE's tokenizer.json has no post-processor, so Python's encode() adds nothing; we say so explicitly
  // so that a Llama-style tokenizer (which would add BOS to every piece) behaves the same way.
  return (text) => ({ ids: tok.encode(text, { addSpecialTokens: false }).ids, text });
}

function join(pieces: Piece[]): Piece {
  return { ids: pieces.flatMap((p) => p.ids), text: pieces.map((p) => p.text).join("") };
}

function roleOf(m: ChatMessage, i: number): ChatMessage["role"] {
  if (!m || typeof m.content !== "string") {
    throw new XverseError("bad_messages", `message ${i}: expected {"role": …, "content": "text"}`);
  }
  return m.role === "tool" ? "exec" : m.role;
}

function finish(parts: Piece[], opts: XverseBuildOptions, budget: number, truncated: boolean, format: "v1" | "v2"): BuiltPrompt {
  const body = join(parts);
  if (opts.bosId !== undefined && opts.bosId !== null) {
    body.ids.unshift(opts.bosId);
  }
  return { ids: body.ids, text: body.text, format, budget, truncated };
}

function effectiveBudget(opts: XverseBuildOptions): number {
  const b = opts.budget - (opts.bosId !== undefined && opts.bosId !== null ? 1 : 0);
  if (!(b >= 1)) throw new XverseError("prompt_too_long", `the prompt budget (${opts.budget} tokens) leaves no room for the prompt: lower --max-new-tokens`);
  return b;
}

/**
 * The newest-first walk both official builders share: pieces gather into a round (newest message first), and a
 * user / exec / system message closes the round into the prompt — the newest round always, older ones only while
 * the total stays within the budget.
 */
class NewestFirst {
  total: Piece[] = [];
  totalLen = 0;
  truncated = false;
  private round: Piece[] = [];
  private roundLen = 0;

  constructor(private readonly max: number) {}

  /** Puts pieces in front of the current round. */
  prepend(...pieces: Piece[]): void {
    this.round = [...pieces, ...this.round];
    for (const p of pieces) this.roundLen += p.ids.length;
  }

  /** Closes the round; false means stop the walk. `newest`: the walk's first message; `older`: more remain. */
  commit(newest: boolean, older: boolean): boolean {
    if (!newest && this.totalLen + this.roundLen > this.max) {
      this.truncated = true;
      return false;
    }
    this.total = [...this.round, ...this.total];
    this.totalLen += this.roundLen;
    this.round = [];
    this.roundLen = 0;
    if (newest && this.totalLen >= this.max) {
      this.truncated ||= older;
      return false;
    }
    return true;
  }
}

/**
 * v1 (XVERSE-13B-Chat v1, 7B-Chat era): each user turn is ONE string "Human: {content}\n\n" (+ "Assistant: "
 * on the newest), each assistant turn "Assistant: {content}" + eos id; user/assistant only; a final left cut.
 */
export function buildV1(tok: Tokenizer, messages: readonly ChatMessage[], opts: XverseBuildOptions): BuiltPrompt {
  const enc = encoder(tok);
  const max = effectiveBudget(opts);
  const eos: Piece = { ids: [opts.eosId], text: tok.idToToken(opts.eosId) ?? "" };
  const walk = new NewestFirst(max);
  const n = messages.length;
  for (let i = 0; i < n; i++) {
    const m = messages[n - 1 - i];
    const role = roleOf(m, n - 1 - i);
    if (role === "user") {
      walk.prepend(enc(`${HUMAN}${m.content}\n\n${i === 0 ? ASSISTANT : ""}`));
      if (!walk.commit(i === 0, i + 1 < n)) break;
    } else if (role === "assistant") {
      walk.prepend(enc(ASSISTANT + m.content), eos);
    } else {
      throw new XverseError(
        "unsupported",
        `the v1 chat format supports only "user" and "assistant" messages, got "${m.role}" (message ${n - 1 - i}); use format v2 for system and exec turns`,
      );
    }
  }
  let { total, truncated } = walk;
  if (walk.totalLen > max) {
    // the official code keeps the LAST max_input_tokens ids (left truncation), even mid-token-sequence
    const ids = join(total).ids.slice(-max);
    total = [{ ids, text: tok.decode(ids, { skipSpecialTokens: false }) }];
    truncated = true;
  }
  return finish(total, opts, opts.budget, truncated, "v1");
}

/**
 * v2 (13B-2-Chat / 65B-Chat / 256K era): the prefixes "Human: ", "Exec: ", "Assistant: " are encoded
 * separately from the content (so each piece gets its own Metaspace "▁"), system is "Human: " + "{system}\n",
 * exec turns carry tool results, and the newest message is cut from its end to fit; no final left cut.
 */
export function buildV2(tok: Tokenizer, messages: readonly ChatMessage[], opts: XverseBuildOptions): BuiltPrompt {
  const enc = encoder(tok);
  const max = effectiveBudget(opts);
  const H = enc(HUMAN);
  const E = enc(EXEC);
  const A = enc(ASSISTANT);
  const eos: Piece = { ids: [opts.eosId], text: tok.idToToken(opts.eosId) ?? "" };
  const walk = new NewestFirst(max);
  const n = messages.length;
  for (let i = 0; i < n; i++) {
    const idx = n - 1 - i;
    const m = messages[idx];
    const role = roleOf(m, idx);
    if (role === "user" || role === "exec") {
      let parts: Piece[] = [role === "user" ? H : E, enc(m.content + "\n\n")];
      if (i === 0) {
        // the newest message keeps its first (max − len(A)) ids, then "Assistant: " follows
        const keep = max - A.ids.length;
        const flat = join(parts);
        if (flat.ids.length > keep) {
          if (keep <= 0) {
            throw new XverseError("prompt_too_long", `the prompt budget (${opts.budget} tokens) is smaller than the "Assistant: " prefix: lower --max-new-tokens`);
          }
          const ids = flat.ids.slice(0, keep);
          const prefix = parts[0];
          const text = keep >= prefix.ids.length
            ? prefix.text + tok.decode(ids.slice(prefix.ids.length), { skipSpecialTokens: false })
            : tok.decode(ids, { skipSpecialTokens: false });
          parts = [{ ids, text }];
          walk.truncated = true;
        }
        parts.push(A);
      }
      walk.prepend(...parts);
      if (!walk.commit(i === 0, i + 1 < n)) break;
    } else if (role === "assistant") {
      walk.prepend(A, enc(m.content), eos);
    } else if (role === "system") {
      if (idx !== 0) throw new XverseError("bad_messages", `a system message must be the first message (found one at position ${idx})`);
      // one "\n" after the system text, and the Human prefix reused: as the official builder does
      walk.prepend(H, enc(m.content + "\n"));
      // a system prompt that does not fit is dropped, like any older turn
      if (!walk.commit(false, false)) break;
    } else {
      throw new XverseError("bad_messages", `message ${idx}: unknown role "${m.role}" (use system, user, assistant or exec)`);
    }
  }
  return finish(walk.total, opts, opts.budget, walk.truncated, "v2");
}
