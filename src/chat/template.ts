/**
 * The "template" chat format: tokenizer_config.json's jinja `chat_template`, rendered with @huggingface/jinja,
 * so that other LLaMA-family chat models work. XVERSE's own checkpoints ship no template (their format lives in
 * modeling_xverse.py), which is why v1/v2 are built in code.
 */
import { Template } from "@huggingface/jinja";
import { XverseError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/types.js";
import type { BuiltPrompt, ChatMessage } from "./types.js";

export interface TemplateOptions {
  template: string;
  budget: number;
  bosToken?: string | null;
  eosToken?: string | null;
  /** OpenAI-form tools, handed to the template as `tools` (templates without tool support ignore them). */
  tools?: unknown[] | null;
}

const cache = new Map<string, Template>();

function compile(source: string): Template {
  let t = cache.get(source);
  if (!t) {
    try {
      t = new Template(source);
    } catch (e) {
      throw new XverseError("bad_template", `tokenizer_config.json chat_template does not parse: ${(e as Error).message}`);
    }
    // a process sees one or two templates; a bound keeps a stream of distinct ones (a fuzzer) from growing it
    if (cache.size >= 16) cache.delete(cache.keys().next().value!);
    cache.set(source, t);
  }
  return t;
}

export function renderTemplate(messages: readonly ChatMessage[], opts: Omit<TemplateOptions, "budget">): string {
  const last = messages[messages.length - 1];
  try {
    return compile(opts.template).render({
      // HF templates call tool results "tool"; XVERSE calls them "exec"
      messages: messages.map((m) => ({ role: m.role === "exec" ? "tool" : m.role, content: m.content })),
      add_generation_prompt: !last || last.role !== "assistant",
      bos_token: opts.bosToken ?? "",
      eos_token: opts.eosToken ?? "",
      ...(opts.tools && opts.tools.length ? { tools: opts.tools } : {}),
    });
  } catch (e) {
    if (e instanceof XverseError) throw e;
    throw new XverseError("bad_template", `chat_template failed to render: ${(e as Error).message}`);
  }
}

/**
 * Renders, encodes (the template writes BOS itself when it wants one) and, when over budget, drops the oldest
 * non-system messages one at a time — the same newest-first priority as XVERSE's builders.
 */
export function buildFromTemplate(tok: Tokenizer, messages: readonly ChatMessage[], opts: TemplateOptions): BuiltPrompt {
  const system = messages[0]?.role === "system" ? [messages[0]] : [];
  const rest = messages.slice(system.length);
  const attempt = (drop: number) => {
    const text = renderTemplate([...system, ...rest.slice(drop)], opts);
    const ids = tok.encode(text, { addSpecialTokens: false }).ids;
    return { ids, text, format: "template" as const, budget: opts.budget, truncated: drop > 0 };
  };
  const whole = attempt(0);
  if (whole.ids.length <= opts.budget) return whole;
  // The fewest oldest messages to drop, found by bisection: dropping more never renders longer, so this is what
  // dropping one at a time finds, in log2(n) renders instead of n (a request with thousands of short messages
  // re-encoded its whole history once per message, seconds on the decode thread).
  let lo = 1, hi = Math.max(0, rest.length - 1);
  let best = hi > 0 ? attempt(hi) : whole; // the newest message alone
  if (best.ids.length > opts.budget) {
    throw new XverseError("prompt_too_long", `the newest message alone renders to ${best.ids.length} tokens, over the ${opts.budget}-token prompt budget: shorten it or lower --max-new-tokens`);
  }
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const r = attempt(mid);
    if (r.ids.length <= opts.budget) { best = r; hi = mid; } else lo = mid + 1;
  }
  return best; // = attempt(lo): hi only moves onto a drop count that fits
}
