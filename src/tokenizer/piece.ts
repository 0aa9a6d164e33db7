/**
 * A normalized piece of the input and where each of its UTF-16 units came from in the original string
 * (Hugging Face's NormalizedString, minus the parts we do not need).
 *
 * Offsets inside the pipeline are UTF-16 units of the original text; the tokenizer converts them to code points
 * at the very end, as the Rust library's node binding reports them.
 *
 * Most pieces are plain slices of the input, possibly with a few inserted leading units (Metaspace / Prepend),
 * so the common case carries no per-unit array at all: `a === null` means unit i (i >= k) maps to
 * [o + i - k, o + i - k + 1), and the k inserted units map to the first original character.
 */
export interface Piece {
  /** The normalized text. */
  s: string;
  /** Per unit [start, end) pairs into the original (length 2 * s.length), or null for the compact form. */
  a: Int32Array | null;
  /** Compact form: original offset of unit k. */
  o: number;
  /** Compact form: how many leading units were inserted (they align to the first original character). */
  k: number;
  /** Compact form: length in units of the first original character (1 or 2). */
  f: number;
}

export function plainPiece(s: string, o: number): Piece {
  return { s, a: null, o, k: 0, f: firstCharLen(s, 0) };
}

export function firstCharLen(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
}

/** Original start of unit i. */
export function startOf(p: Piece, i: number): number {
  if (p.a !== null) return p.a[2 * i];
  return i < p.k ? p.o : p.o + i - p.k;
}

/** Original end of unit i. */
export function endOf(p: Piece, i: number): number {
  if (p.a !== null) return p.a[2 * i + 1];
  return i < p.k ? p.o + p.f : p.o + i - p.k + 1;
}

/** Units [from, to) of a piece, alignment kept. */
export function subPiece(p: Piece, from: number, to: number): Piece {
  const s = p.s.slice(from, to);
  if (p.a !== null) return { s, a: p.a.subarray(2 * from, 2 * to), o: 0, k: 0, f: 1 };
  if (from >= p.k) return { s, a: null, o: p.o + from - p.k, k: 0, f: firstCharLen(s, 0) };
  // The slice keeps some inserted units: they still align to the piece's first character.
  return { s, a: null, o: p.o, k: Math.min(p.k, to) - from, f: p.f };
}

/** Replaces units one-for-one (same length): alignment is unchanged. */
export function withText(p: Piece, s: string): Piece {
  return { s, a: p.a, o: p.o, k: p.k, f: p.f };
}

/**
 * Prepends `text` (Hugging Face NormalizedString::prepend): the new units align to the first character.
 * An empty piece stays empty.
 */
export function prependPiece(p: Piece, text: string): Piece {
  if (p.s.length === 0 || text.length === 0) return p;
  if (p.a === null) return { s: text + p.s, a: null, o: p.o, k: p.k + text.length, f: p.f };
  const n = firstCharLen(p.s, 0);
  const st = p.a[0];
  const en = p.a[2 * n - 1];
  const a = new Int32Array(2 * (text.length + p.s.length));
  for (let i = 0; i < text.length; i++) {
    a[2 * i] = st;
    a[2 * i + 1] = en;
  }
  a.set(p.a, 2 * text.length);
  return { s: text + p.s, a, o: 0, k: 0, f: 1 };
}

/** Collects output units with their alignments, for transforms that change lengths. */
export class PieceBuilder {
  private parts: string[] = [];
  private al: number[] = [];
  /** Appends `text`, every unit aligned to [start, end). */
  push(text: string, start: number, end: number): void {
    this.parts.push(text);
    for (let i = 0; i < text.length; i++) this.al.push(start, end);
  }
  /** Appends units [from, to) of p unchanged. */
  copy(p: Piece, from: number, to: number): void {
    if (to <= from) return;
    this.parts.push(p.s.slice(from, to));
    for (let i = from; i < to; i++) this.al.push(startOf(p, i), endOf(p, i));
  }
  build(): Piece {
    return { s: this.parts.join(""), a: Int32Array.from(this.al), o: 0, k: 0, f: 1 };
  }
}

/** Splits a piece at [start, end) unit ranges flagged as matches, with Hugging Face's delimiter behaviours. */
export type SplitBehavior = "Removed" | "Isolated" | "MergedWithPrevious" | "MergedWithNext" | "Contiguous";

/**
 * `ranges` are the match ranges (sorted, non-overlapping). Returns the non-empty sub-pieces, as
 * NormalizedString::split does.
 */
export function splitPiece(p: Piece, ranges: number[], behavior: SplitBehavior, out: { push(p: Piece): unknown }, invert = false): void {
  const n = p.s.length;
  if (n === 0) return;
  // Full partition of the piece into (start, end, isMatch), like Pattern::find_matches.
  const parts: number[] = [];
  let prev = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    const s = ranges[i];
    const e = ranges[i + 1];
    if (prev !== s) parts.push(prev, s, invert ? 1 : 0);
    parts.push(s, e, invert ? 0 : 1);
    prev = e;
  }
  if (prev !== n) parts.push(prev, n, invert ? 1 : 0);
  const keep: number[] = [];
  if (behavior === "Isolated") {
    for (let i = 0; i < parts.length; i += 3) keep.push(parts[i], parts[i + 1]);
  } else if (behavior === "Removed") {
    for (let i = 0; i < parts.length; i += 3) if (!parts[i + 2]) keep.push(parts[i], parts[i + 1]);
  } else if (behavior === "Contiguous") {
    let prevMatch = false;
    for (let i = 0; i < parts.length; i += 3) {
      const m = parts[i + 2] === 1;
      if (m === prevMatch && keep.length > 0) keep[keep.length - 1] = parts[i + 1];
      else keep.push(parts[i], parts[i + 1]);
      prevMatch = m;
    }
  } else if (behavior === "MergedWithPrevious") {
    let prevMatch = false;
    for (let i = 0; i < parts.length; i += 3) {
      const m = parts[i + 2] === 1;
      if (m && !prevMatch && keep.length > 0) keep[keep.length - 1] = parts[i + 1];
      else keep.push(parts[i], parts[i + 1]);
      prevMatch = m;
    }
  } else {
    // MergedWithNext: walk backwards, a match joins the piece after it unless that one is a match too.
    const rev: number[] = [];
    let prevMatch = false;
    for (let i = parts.length - 3; i >= 0; i -= 3) {
      const m = parts[i + 2] === 1;
      if (m && !prevMatch && rev.length > 0) rev[rev.length - 2] = parts[i];
      else rev.push(parts[i], parts[i + 1]);
      prevMatch = m;
    }
    for (let i = rev.length - 2; i >= 0; i -= 2) keep.push(rev[i], rev[i + 1]);
  }
  for (let i = 0; i < keep.length; i += 2) {
    if (keep[i + 1] > keep[i]) out.push(keep[i] === 0 && keep[i + 1] === n ? p : subPiece(p, keep[i], keep[i + 1]));
  }
}
