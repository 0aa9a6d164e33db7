/**
 * Streaming decode: ids in, text deltas out. Works for any decoder chain by decoding a small window of ids:
 * the text of the window minus the text of its already-emitted prefix. A delta is held back while the window's
 * text ends in U+FFFD (an unfinished UTF-8 sequence from byte tokens), and the window always starts at the
 * stream's first id until something has been emitted, so the decoder's "first token" rules (Metaspace dropping
 * the leading space) apply only at the very start. Later windows keep one emitted token as context, which makes
 * its own leading-space rule cancel out between prefix and window.
 */
import type { StreamDecoder } from "./types.js";

export function createStreamDecoder(decode: (ids: number[]) => string, skip: (id: number) => boolean): StreamDecoder {
  let ids: number[] = [];
  let prefixLen = 0; // ids[0..prefixLen) are already emitted (as context)
  let prefixText = "";
  return {
    push(id: number): string {
      if (skip(id)) return "";
      ids.push(id);
      const text = decode(ids);
      if (text.length <= prefixText.length || text.endsWith("\ufffd") || !text.startsWith(prefixText)) return "";
      const delta = text.slice(prefixText.length);
      // Keep the ids of this emission as the next window's context.
      ids = ids.slice(prefixLen);
      prefixLen = ids.length;
      prefixText = decode(ids);
      return delta;
    },
    flush(): string {
      if (ids.length === prefixLen) return "";
      const text = decode(ids);
      // The text can only fail to extend what was emitted when the stream ends inside a broken byte sequence that
      // swallowed earlier bytes; emit what lies past the part already shown rather than repeat it.
      let common = 0;
      while (common < prefixText.length && common < text.length && text[common] === prefixText[common]) common++;
      const delta = text.startsWith(prefixText) ? text.slice(prefixText.length) : text.slice(Math.max(common, prefixText.length));
      ids = ids.slice(prefixLen);
      prefixLen = ids.length;
      prefixText = decode(ids);
      return delta;
    },
  };
}
