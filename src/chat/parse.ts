/**
 * Reading tool calls out of a reply: `<|startofthink|>` [```JSON] {"api_name": …, "parameters": {…}} [```]
 * `<|endofthink|>` (xverse-facts §6). The markers are plain text, not special tokens, so they are matched in the
 * decoded text. A broken call is a result ({call: null, error: "not a valid call: …"}), never an exception: the
 * model wrote it, not the caller.
 */
import { THINK_END, THINK_START } from "./tools.js";

export interface ToolCall {
  name: string;
  arguments: Record<string, unknown>;
  /** The README's prompt asks for a url too; kept when the model writes one. */
  url?: string;
}

export interface ParsedReply {
  /** The reply text before the call (trailing whitespace trimmed), or the whole reply when there is no call. */
  text: string;
  call: ToolCall | null;
  /** Set when a start marker was found but what follows is not a usable call. */
  error?: string;
  /** Whatever follows the end marker. */
  after?: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

// an optional ``` fence with an optional language tag, then the JSON, then an optional closing fence
const FENCE_OPEN = /^```[ \t]*(?:json)?[ \t]*\r?\n?/i;
const FENCE_CLOSE = /\r?\n?```$/;

/** The text between the markers → a call, or the reason it is not one. */
export function parseCallBody(body: string): { call: ToolCall } | { error: string } {
  const json = body.trim().replace(FENCE_OPEN, "").trim().replace(FENCE_CLOSE, "").trim();
  if (!json) return { error: "not a valid call: nothing between the markers" };
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    return { error: `not a valid call: the JSON does not parse (${(e as Error).message})` };
  }
  if (!isObj(v)) return { error: "not a valid call: expected a JSON object" };
  const name = v.api_name ?? v.name;
  if (typeof name !== "string" || !name) return { error: 'not a valid call: "api_name" is missing or not a string' };
  let args = v.parameters ?? v.arguments ?? {};
  if (typeof args === "string") {
    // some models write the arguments as a JSON string (as OpenAI's API does)
    try {
      args = JSON.parse(args);
    } catch {
      return { error: 'not a valid call: "parameters" is a string that is not JSON' };
    }
  }
  if (!isObj(args)) return { error: 'not a valid call: "parameters" must be an object' };
  const call: ToolCall = { name, arguments: args };
  if (typeof v.url === "string") call.url = v.url;
  return { call };
}

/** Splits a finished reply into text and call. */
export function parseToolCall(reply: string): ParsedReply {
  const start = reply.indexOf(THINK_START);
  if (start < 0) return { text: reply, call: null };
  const text = reply.slice(0, start).trimEnd();
  const rest = reply.slice(start + THINK_START.length);
  const end = rest.indexOf(THINK_END);
  const body = end < 0 ? rest : rest.slice(0, end);
  const r = parseCallBody(body);
  if (!("call" in r)) {
    // a complete JSON call cut off before its end marker (e.g. max tokens hit right there) still counts;
    // anything else without the end marker says so
    const error = end < 0 ? `not a valid call: no ${THINK_END} after ${THINK_START} (${r.error.replace(/^not a valid call: /, "")})` : r.error;
    return { text, call: null, error };
  }
  const out: ParsedReply = { text, call: r.call };
  if (end >= 0 && rest.length > end + THINK_END.length) {
    out.after = rest.slice(end + THINK_END.length);
  }
  return out;
}

/**
 * The same parse over streamed deltas, where a marker may arrive split across several. `push` returns the text
 * that is safe to show now (reply text before the call; anything that might be the start of the marker is held
 * back), and `call` once the end marker has arrived; `end()` gives exactly what parseToolCall(whole) gives.
 */
export class ToolCallStream {
  private all = "";
  private shown = 0;
  private phase: "text" | "call" | "after" = "text";
  private result: ParsedReply | null = null;

  push(delta: string): { text: string; call?: ParsedReply } {
    this.all += delta;
    let text = "";
    if (this.phase === "text") {
      const at = this.all.indexOf(THINK_START, Math.max(0, this.shown - THINK_START.length));
      if (at >= 0) {
        text = this.all.slice(this.shown, at);
        this.shown = at;
        this.phase = "call";
      } else {
        const safe = this.all.length - heldBack(this.all, THINK_START);
        text = this.all.slice(this.shown, safe);
        this.shown = safe;
      }
    }
    if (this.phase === "call" && this.all.indexOf(THINK_END, this.shown + THINK_START.length) >= 0) {
      this.phase = "after";
      this.result = parseToolCall(this.all);
      return { text, call: this.result };
    }
    return { text };
  }

  /** The final parse; text held back as a possible marker start is part of `text` here. */
  end(): ParsedReply {
    return parseToolCall(this.all);
  }

  /** Text held back so far (a possible marker start), for callers that end the stream without a call. */
  pending(): string {
    return this.phase === "text" ? this.all.slice(this.shown) : "";
  }
}

/** Length of the longest suffix of `s` that is a proper prefix of `marker`. */
function heldBack(s: string, marker: string): number {
  for (let k = Math.min(marker.length - 1, s.length); k > 0; k--) {
    if (s.endsWith(marker.slice(0, k))) return k;
  }
  return 0;
}

/**
 * A call cut off before its end (max_tokens hit mid-call): its tool name and the arguments written so far, as
 * OpenAI returns a cut call (`tool_calls` with partial `arguments`, finish_reason "length"), so the markup never
 * ends up in the reply text. `names`: the tools it may be; a partial name that only one of them starts with is
 * completed. Null when `text` holds no call start (with `forced`, text cut inside the start marker is one).
 */
export function partialToolCall(text: string, names: readonly string[] = [], forced = false): { name: string; arguments: string } | null {
  const at = text.indexOf(THINK_START);
  // a forced call may be cut inside the start marker itself
  if (at < 0 && !(forced && THINK_START.startsWith(text))) return null;
  const rest = at < 0 ? "" : text.slice(at + THINK_START.length);
  const m = /"(?:api_name|name)"\s*:\s*"((?:[^"\\]|\\.)*)"?/.exec(rest);
  let name = m ? m[1] : "";
  const fits = names.filter((n) => n.startsWith(name));
  if (fits.length === 1) name = fits[0];
  const p = /"(?:parameters|arguments)"\s*:\s*/.exec(rest);
  return { name, arguments: p ? jsonValuePrefix(rest.slice(p.index + p[0].length)) : "" };
}

/** The leading JSON value of `s` (up to where its brackets close), or all of `s` when it never closes. */
function jsonValuePrefix(s: string): string {
  let depth = 0, inStr = false, esc = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inStr) {
      if (esc) esc = false;
      else if (c === "\\") esc = true;
      else if (c === '"') inStr = false;
      continue;
    }
    if (c === '"') inStr = true;
    else if (c === "{" || c === "[") depth++;
    else if ((c === "}" || c === "]") && --depth === 0) return s.slice(0, i + 1);
  }
  return s;
}
