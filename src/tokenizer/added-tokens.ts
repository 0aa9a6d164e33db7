/**
 * Added tokens (Hugging Face AddedVocabulary): found in the raw text (normalized: false) or in the normalized
 * text (normalized: true) before any pre-tokenization, leftmost-longest, with single_word / lstrip / rstrip.
 */
import { type Piece, endOf, startOf, subPiece } from "./piece.js";

export interface AddedToken {
  id: number;
  content: string;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** A piece of text still to tokenize, or an added token already found. */
export type Segment = { piece: Piece; id: -1 } | { piece: Piece; id: number };

const WS = /^\p{White_Space}$/u;
// Rust regex \w (UTS #18): what single_word treats as part of a word.
const WORDCH = /^[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]$/u;

/** Finds one set of added tokens in text. */
export class AddedMatcher {
  private readonly re: RegExp | null;
  private readonly byContent = new Map<string, AddedToken>();

  /** `contents[i]` is what to search for (normalized content for normalized tokens). */
  constructor(tokens: AddedToken[], contents: string[]) {
    const order = tokens.map((t, i) => ({ t, c: contents[i] })).filter((x) => x.c.length > 0);
    // Longest first: JS alternation is leftmost-first, so this gives the leftmost-longest match.
    order.sort((a, b) => b.c.length - a.c.length);
    for (const x of order) if (!this.byContent.has(x.c)) this.byContent.set(x.c, x.t);
    this.re = order.length === 0 ? null : new RegExp(order.map((x) => escapeRe(x.c)).join("|"), "gu");
  }

  get empty(): boolean {
    return this.re === null;
  }

  /** Splits a piece into text segments and added-token segments (AddedVocabulary::find_matches). */
  split(p: Piece, out: Segment[]): void {
    const s = p.s;
    if (this.re === null || s.length === 0) {
      if (s.length > 0) out.push({ piece: p, id: -1 });
      return;
    }
    const re = this.re;
    re.lastIndex = 0;
    let startOffset = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
      let start = m.index;
      let stop = start + m[0].length;
      const tok = this.byContent.get(m[0])!;
      if (tok.singleWord) {
        const startSpace = start === 0 || !WORDCH.test(lastChar(s, start));
        const stopSpace = stop === s.length || !WORDCH.test(firstChar(s, stop));
        if (!startSpace || !stopSpace) continue;
      }
      if (tok.lstrip) {
        let k = start;
        while (k > 0 && WS.test(lastChar(s, k))) k -= lastChar(s, k).length;
        start = Math.max(k, startOffset);
      }
      if (tok.rstrip) {
        while (stop < s.length && WS.test(firstChar(s, stop))) stop += firstChar(s, stop).length;
        re.lastIndex = stop;
      }
      if (start > startOffset) out.push({ piece: subPiece(p, startOffset, start), id: -1 });
      out.push({ piece: subPiece(p, start, stop), id: tok.id });
      startOffset = stop;
    }
    if (startOffset === 0) out.push({ piece: p, id: -1 });
    else if (startOffset < s.length) out.push({ piece: subPiece(p, startOffset, s.length), id: -1 });
  }
}

function lastChar(s: string, end: number): string {
  const c = s.charCodeAt(end - 1);
  return c >= 0xdc00 && c <= 0xdfff && end >= 2 ? s.slice(end - 2, end) : s[end - 1];
}

function firstChar(s: string, i: number): string {
  return String.fromCodePoint(s.codePointAt(i)!);
}

function escapeRe(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}

/** Original [start, end) of a whole piece. */
export function pieceSpan(p: Piece): [number, number] {
  if (p.s.length === 0) return [startOf(p, 0), startOf(p, 0)];
  return [startOf(p, 0), endOf(p, p.s.length - 1)];
}
