/**
 * Streaming decode: ids in, text deltas out. Works for any decoder chain by decoding a small window of ids:
 * the text of the window minus the text of its already-emitted prefix. A delta is held back while the window's
 * text ends in U+FFFD (an unfinished UTF-8 sequence from byte tokens), and the window always starts at the
 * stream's first id until something has been emitted, so the decoder's "first token" rules (Metaspace dropping
 * the leading space) apply only at the very start. Later windows keep one emitted token as context, which makes
 * its own leading-space rule cancel out between prefix and window.
 *
 * With a `context` (the ids before the stream, e.g. a prompt) the first window starts with the context's last
 * few tokens instead, so the stream is a continuation: its deltas join to decode(context + ids) minus
 * decode(context) — "Zoo" + " was", not "was" — as OpenAI's completions define the text of a continuation.
 */
import type { StreamDecoder } from "./types.js";

/**
 * Context tokens (not counting skipped ones) the first window starts with. Decoders' context rules reach one
 * token back (Metaspace / Strip drop one leading space of the first token, clean-up joins a space and the next
 * punctuation, byte tokens complete a character of at most four bytes), so a few are enough and a long prompt
 * costs nothing per token.
 */
export const STREAM_CONTEXT_TOKENS = 8;

export function createStreamDecoder(decode: (ids: number[]) => string, skip: (id: number) => boolean, context?: ArrayLike<number>): StreamDecoder {
  let ids = context === undefined ? [] : contextTail(decode, skip, context);
  let prefixLen = ids.length; // ids[0..prefixLen) are already emitted (as context)
  let prefixText = prefixLen ? decode(ids) : "";
  // The context's text may end in an unfinished UTF-8 sequence (a prompt of ids cut inside a character) that the
  // first ids complete: then the window's text does not extend it, and the delta starts where they part.
  let fromContext = prefixLen > 0;
  const emit = (text: string): string => {
    let delta: string;
    if (text.startsWith(prefixText)) delta = text.slice(prefixText.length);
    else {
      let common = 0;
      while (common < prefixText.length && common < text.length && text[common] === prefixText[common]) common++;
      delta = text.slice(fromContext ? common : Math.max(common, prefixText.length));
    }
    // Keep the ids of this emission as the next window's context — unless they start inside a character the
    // context began (then the context stays in the window until the next emission).
    const next = ids.slice(prefixLen);
    const nextText = decode(next);
    if (fromContext && nextText.startsWith("\ufffd")) prefixText = text;
    else {
      ids = next;
      prefixText = nextText;
    }
    prefixLen = ids.length;
    fromContext = false;
    return delta;
  };
  return {
    push(id: number): string {
      if (skip(id)) return "";
      ids.push(id);
      const text = decode(ids);
      if (text.endsWith("\ufffd")) return "";
      if (text.startsWith(prefixText) ? text.length <= prefixText.length : !fromContext) return "";
      return emit(text);
    },
    flush(): string {
      if (ids.length === prefixLen) return "";
      // The text can only fail to extend what was emitted when the stream ends inside a broken byte sequence that
      // swallowed earlier bytes; emit what lies past the part already shown rather than repeat it.
      return emit(decode(ids));
    },
  };
}

/**
 * The last STREAM_CONTEXT_TOKENS kept ids of a context, moved back (a few ids at most) to start on a character:
 * a window starting inside one would decode as U+FFFD — ByteFallback turns a whole run of byte tokens into U+FFFDs
 * when any of it is invalid, so the run's other characters too. Where the context itself ends inside a character
 * its end is as dirty at every start; the start is then found without those last few ids.
 */
function contextTail(decode: (ids: number[]) => string, skip: (id: number) => boolean, context: ArrayLike<number>): number[] {
  const kept: number[] = [];
  for (let i = 0; i < context.length; i++) if (!skip(context[i])) kept.push(context[i]);
  const s0 = Math.max(0, kept.length - STREAM_CONTEXT_TOKENS);
  let best = -1;
  for (let held = 0; held <= 3 && kept.length - held > s0; held++) {
    const end = kept.length - held;
    let s = s0;
    while (s > 0 && s > s0 - 4 && decode(kept.slice(s, end)).startsWith("\ufffd")) s--;
    if (best < 0) best = s;
    const text = decode(kept.slice(s, end));
    if (!text.startsWith("\ufffd") && !text.endsWith("\ufffd")) {
      best = s;
      break;
    }
  }
  return kept.slice(Math.max(best, 0));
}
