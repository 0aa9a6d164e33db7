/**
 * Decoders from tokenizer.json, as chains over token strings (Hugging Face's decode_chain); the final text is
 * the concatenation of what the last step returns.
 */
import { XverseError } from "../errors.js";
import { CHAR_TO_BYTE } from "./pre-tokenizers.js";
import { compileHfPattern } from "./regex.js";

export type Decoder = (tokens: string[]) => string[];

type Json = Record<string, any>;

export function buildDecoder(j: Json | null | undefined): Decoder | null {
  if (j == null) return null;
  switch (j.type) {
    case "Sequence": {
      const steps = ((j.decoders ?? []) as Json[]).map(buildDecoder).filter((d): d is Decoder => d !== null);
      return (tokens) => {
        for (const s of steps) tokens = s(tokens);
        return tokens;
      };
    }
    case "Metaspace": {
      const rep = String(j.replacement ?? "\u2581");
      const scheme = j.prepend_scheme ?? (j.add_prefix_space === false ? "never" : "always");
      const strip = scheme !== "never";
      // Every replacement character becomes a space, except in the first token, where it is dropped
      // (that is where the pre-tokenizer prepended it).
      return (tokens) => tokens.map((t, i) => (i === 0 && strip ? t.replaceAll(rep, "") : t.replaceAll(rep, " ")));
    }
    case "ByteFallback":
      return byteFallback;
    case "Fuse":
      return (tokens) => [tokens.join("")];
    case "Strip": {
      const content = String(j.content ?? " ");
      const start = Number(j.start ?? 0);
      const stop = Number(j.stop ?? 0);
      return (tokens) => tokens.map((t) => stripChars(t, content, start, stop));
    }
    case "Replace": {
      const pat = compileHfPattern(j.pattern, "decoder Replace");
      const content = String(j.content ?? "");
      return (tokens) =>
        tokens.map((t) => {
          const r = pat.find(t);
          if (r.length === 0) return t;
          let s = "";
          let prev = 0;
          for (let i = 0; i < r.length; i += 2) {
            s += t.slice(prev, r[i]) + content;
            prev = r[i + 1];
          }
          return s + t.slice(prev);
        });
    }
    case "ByteLevel":
      return byteLevelDecode;
    case "BPEDecoder": {
      const suffix = String(j.suffix ?? "</w>");
      return (tokens) => tokens.map((t, i) => t.replaceAll(suffix, i === tokens.length - 1 ? "" : " "));
    }
    case "WordPiece": {
      const prefix = String(j.prefix ?? "##");
      return (tokens) => tokens.map((t, i) => (i === 0 ? t : t.startsWith(prefix) ? t.slice(prefix.length) : " " + t));
    }
    default:
      throw new XverseError("unsupported", `decoder type ${j.type} is not supported`);
  }
}

function stripChars(t: string, content: string, start: number, stop: number): string {
  const chars = Array.from(t);
  let a = 0;
  for (let i = 0; i < start && i < chars.length; i++) {
    if (chars[i] === content) a = i + 1;
    else break;
  }
  let b = chars.length;
  for (let i = 0; i < stop; i++) {
    const k = chars.length - i - 1;
    if (k < 0 || chars[k] !== content) break;
    b = k;
  }
  return a === 0 && b === chars.length ? t : chars.slice(a, Math.max(a, b)).join("");
}

/** "<0xNN>" → its byte, else -1. */
export function byteTokenValue(t: string): number {
  if (t.length !== 6 || !t.startsWith("<0x") || t[5] !== ">") return -1;
  const h = t.slice(3, 5);
  return /^[0-9A-Fa-f]{2}$/.test(h) ? parseInt(h, 16) : -1;
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Runs of byte tokens become text; an invalid run becomes one U+FFFD per byte (String::from_utf8 failing). */
function byteFallback(tokens: string[]): string[] {
  const out: string[] = [];
  let bytes: number[] = [];
  const flush = (): void => {
    if (bytes.length === 0) return;
    try {
      out.push(strictUtf8.decode(Uint8Array.from(bytes)));
    } catch {
      for (let i = 0; i < bytes.length; i++) out.push("\ufffd");
    }
    bytes = [];
  };
  for (const t of tokens) {
    const b = byteTokenValue(t);
    if (b >= 0) bytes.push(b);
    else {
      flush();
      out.push(t);
    }
  }
  flush();
  return out;
}

const lossyUtf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** Byte-level characters back to bytes, then lossy UTF-8 (a token with a foreign character keeps its own UTF-8). */
function byteLevelDecode(tokens: string[]): string[] {
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (const t of tokens) {
    const mine: number[] = [];
    let ok = true;
    for (const ch of t) {
      const b = CHAR_TO_BYTE.get(ch);
      if (b === undefined) {
        ok = false;
        break;
      }
      mine.push(b);
    }
    if (ok) for (const b of mine) bytes.push(b);
    else for (const b of enc.encode(t)) bytes.push(b);
  }
  return [lossyUtf8.decode(Uint8Array.from(bytes))];
}
