/**
 * Normalizers from tokenizer.json, each a Piece → Piece transform that keeps the alignment to the original
 * text (so offsets still point into what the user passed in).
 */
import { XverseError } from "../errors.js";
import { type Piece, PieceBuilder, endOf, prependPiece, startOf, subPiece, withText } from "./piece.js";
import { compileHfPattern, type HfPattern } from "./regex.js";

export type Normalizer = (p: Piece) => Piece;

type Json = Record<string, any>;

export function buildNormalizer(j: Json | null | undefined): Normalizer | null {
  if (j == null) return null;
  switch (j.type) {
    case "Sequence": {
      const steps = ((j.normalizers ?? []) as Json[]).map(buildNormalizer).filter((n): n is Normalizer => n !== null);
      return (p) => {
        for (const s of steps) p = s(p);
        return p;
      };
    }
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD":
      return unicodeNormalizer(j.type);
    case "Lowercase":
      return lowercase;
    case "Prepend": {
      const text = String(j.prepend ?? "");
      return (p) => prependPiece(p, text);
    }
    case "Replace":
      return replaceNormalizer(compileHfPattern(j.pattern, "normalizer Replace"), String(j.content ?? ""));
    case "Strip":
      return stripNormalizer((j.strip_left ?? j.left) !== false, (j.strip_right ?? j.right) !== false);
    case "StripAccents":
      return stripAccents;
    default:
      throw new XverseError("unsupported", `normalizer type ${j.type} is not supported`);
  }
}

const WS = /\p{White_Space}/u;

function stripNormalizer(left: boolean, right: boolean): Normalizer {
  return (p) => {
    let a = 0;
    let b = p.s.length;
    if (left) while (a < b && WS.test(p.s[a])) a++;
    if (right) while (b > a && WS.test(p.s[b - 1])) b--;
    return a === 0 && b === p.s.length ? p : subPiece(p, a, b);
  };
}

/**
 * A per-character mapping (lowercase, accent stripping): when a character maps to several, all of them align
 * to it; when it maps to nothing it disappears.
 */
function perChar(map: (ch: string) => string, quick: (s: string) => string): Normalizer {
  return (p) => {
    const whole = quick(p.s);
    if (whole === p.s) return p;
    if (whole.length === p.s.length && sameLengthPerChar(p.s, whole, map)) return withText(p, whole);
    const b = new PieceBuilder();
    for (let i = 0; i < p.s.length; ) {
      const len = charLen(p.s, i);
      const ch = p.s.slice(i, i + len);
      b.push(map(ch), startOf(p, i), endOf(p, i + len - 1));
      i += len;
    }
    return b.build();
  };
}

function sameLengthPerChar(s: string, whole: string, map: (ch: string) => string): boolean {
  for (let i = 0; i < s.length; ) {
    const len = charLen(s, i);
    if (map(s.slice(i, i + len)) !== whole.slice(i, i + len)) return false;
    i += len;
  }
  return true;
}

function charLen(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c >= 0xd800 && c <= 0xdbff && i + 1 < s.length ? 2 : 1;
}

// Rust's char::to_lowercase works per character (no context-sensitive final sigma), so map per character.
const lowercase = perChar(
  (ch) => ch.toLowerCase(),
  (s) => (/[\u03a3]/.test(s) ? Array.from(s, (c) => c.toLowerCase()).join("") : s.toLowerCase()),
);

const MARK = /\p{Mn}/u;
const stripAccents = perChar(
  (ch) => (MARK.test(ch) ? "" : ch),
  (s) => s.replace(/\p{Mn}/gu, ""),
);

/**
 * NFC/NFD/NFKC/NFKD with alignment. The text is cut into segments that normalize independently (a starter and
 * the characters that can attach to it); each changed segment is aligned the way the Rust library's
 * unicode-normalization-alignments + NormalizedString::transform do it:
 * - every input character is decomposed on its own: the first character of its decomposition "consumes" it,
 *   the others are inserted (consume nothing);
 * - canonical reordering moves characters together with what they consume;
 * - composition folds absorbed characters (and what they consume) into their starter;
 * - alignment is then positional: an output character that consumes input takes the alignment of the first
 *   input character it consumes; an inserted one takes the alignment of the input character before it.
 */
function unicodeNormalizer(form: "NFC" | "NFD" | "NFKC" | "NFKD"): Normalizer {
  const attaches = new Map<number, boolean>();
  const decomposeForm = form === "NFKC" || form === "NFKD" ? "NFKD" : "NFD";
  const composes = form === "NFC" || form === "NFKC";
  const isAttaching = (cp: number): boolean => {
    if (cp < 0x300) return false;
    let r = attaches.get(cp);
    if (r === undefined) {
      const d = String.fromCodePoint(cp).normalize(decomposeForm);
      const first = d.codePointAt(0)!;
      r = MARK_ANY.test(d.slice(0, first > 0xffff ? 2 : 1)) || (first >= 0x1160 && first <= 0x11ff) || (first >= 0xd7b0 && first <= 0xd7ff);
      attaches.set(cp, r);
    }
    return r;
  };
  return (p) => {
    const s = p.s;
    const whole = s.normalize(form);
    if (whole === s) return p;
    const b = new PieceBuilder();
    let i = 0;
    while (i < s.length) {
      let j = i + charLen(s, i);
      while (j < s.length && isAttaching(s.codePointAt(j)!)) j += charLen(s, j);
      const seg = s.slice(i, j);
      const out = seg.normalize(form);
      if (out === seg) b.copy(p, i, j);
      else alignSegment(p, i, j, out, decomposeForm, composes, b);
      i = j;
    }
    return b.build();
  };
}

const MARK_ANY = /\p{M}/u;

function alignSegment(p: Piece, from: number, to: number, out: string, decomposeForm: "NFD" | "NFKD", composes: boolean, b: PieceBuilder): void {
  const inStarts: number[] = [];
  // Decomposed characters and what each consumes.
  const dChars: string[] = [];
  const dCons: number[] = [];
  for (let i = from; i < to; i += charLen(p.s, i)) {
    inStarts.push(i);
    Array.from(p.s.slice(i, i + charLen(p.s, i)).normalize(decomposeForm)).forEach((c, k) => {
      dChars.push(c);
      dCons.push(k === 0 ? 1 : 0);
    });
  }
  // Canonical reordering is a stable sort, so the k-th occurrence of a character stays the k-th.
  const reordered = Array.from(dChars.join("").normalize("NFD"));
  const seen = new Map<string, number>();
  const eChars: string[] = [];
  const eCons: number[] = [];
  for (const c of reordered) {
    const k = seen.get(c) ?? 0;
    seen.set(c, k + 1);
    let found = -1;
    for (let x = 0, n = 0; x < dChars.length; x++) {
      if (dChars[x] === c && n++ === k) {
        found = x;
        break;
      }
    }
    eChars.push(c);
    eCons.push(found >= 0 ? dCons[found] : 0);
  }
  const outChars = Array.from(out);
  let cons: number[];
  if (!composes || outChars.length === eChars.length) cons = eCons.slice(0, outChars.length);
  else cons = composeConsumption(eChars, eCons, outChars);
  // Positional alignment over the segment's input characters.
  let pos = 0;
  for (let k = 0; k < outChars.length; k++) {
    const src = cons[k] > 0 ? pos : Math.max(0, pos - 1);
    const u = inStarts[Math.min(src, inStarts.length - 1)];
    b.push(outChars[k], startOf(p, u), endOf(p, u + charLen(p.s, u) - 1));
    pos += cons[k];
  }
}

/** What each composed output character consumes: its starter plus the characters composition folded into it. */
function composeConsumption(eChars: string[], eCons: number[], outChars: string[]): number[] {
  const cons: number[] = new Array(outChars.length).fill(0);
  let pending = new Map<string, number>(); // characters still to fold into output `owner`
  let owner = -1;
  let j = 0;
  const absorb = (): boolean => {
    const c = eChars[j];
    const n = pending.get(c) ?? 0;
    if (n === 0 || owner < 0) return false;
    pending.set(c, n - 1);
    cons[owner] += eCons[j];
    j++;
    return true;
  };
  for (let k = 0; k < outChars.length; k++) {
    while (j < eChars.length && absorb());
    if (j >= eChars.length) break;
    const o = outChars[k];
    cons[k] = eCons[j];
    if (eChars[j] === o) {
      // an unchanged starter ends what the previous one could still absorb
      if (!MARK_ANY.test(o)) owner = -1;
    } else {
      // a composed starter: its canonical decomposition is the starter plus what it absorbed
      const parts = Array.from(o.normalize("NFD"));
      pending = new Map();
      for (const c of parts.slice(1)) pending.set(c, (pending.get(c) ?? 0) + 1);
      owner = k;
    }
    j++;
  }
  // Anything left over folds into the last output character.
  for (; j < eChars.length; j++) cons[owner >= 0 && (pending.get(eChars[j]) ?? 0) > 0 ? owner : outChars.length - 1] += eCons[j];
  return cons;
}

/**
 * Replace: every match becomes `content`; the new characters align to the last character of the match
 * (Rust's transform_range with all characters inserted after removing the match).
 */
function replaceNormalizer(pattern: HfPattern, content: string): Normalizer {
  return (p) => {
    const ranges = pattern.find(p.s);
    if (ranges.length === 0) return p;
    // Single character for single character (the common " " → "▁"): alignment is unchanged.
    let oneForOne = content.length > 0 && charLen(content, 0) === content.length;
    for (let i = 0; i < ranges.length && oneForOne; i += 2) {
      if (ranges[i + 1] - ranges[i] !== content.length || charLen(p.s, ranges[i]) !== content.length) oneForOne = false;
    }
    if (oneForOne) {
      let s = "";
      let prev = 0;
      for (let i = 0; i < ranges.length; i += 2) {
        s += p.s.slice(prev, ranges[i]) + content;
        prev = ranges[i + 1];
      }
      return withText(p, s + p.s.slice(prev));
    }
    const b = new PieceBuilder();
    let prev = 0;
    for (let i = 0; i < ranges.length; i += 2) {
      b.copy(p, prev, ranges[i]);
      if (ranges[i + 1] > ranges[i]) {
        const last = ranges[i + 1] - 1;
        const u = last > ranges[i] && isLowSurrogate(p.s.charCodeAt(last)) ? last - 1 : last;
        b.push(content, startOf(p, u), endOf(p, last));
      }
      prev = ranges[i + 1];
    }
    b.copy(p, prev, p.s.length);
    return b.build();
  };
}

function isLowSurrogate(c: number): boolean {
  return c >= 0xdc00 && c <= 0xdfff;
}

/** The normalizer applied to plain strings (to normalize added tokens' contents). */
export function normalizeString(n: Normalizer | null, s: string): string {
  if (n === null) return s;
  return n({ s, a: null, o: 0, k: 0, f: charLen(s, 0) }).s;
}
