/**
 * Pre-tokenizers from tokenizer.json: each cuts a piece into smaller pieces (never across pieces), with Hugging
 * Face's delimiter behaviours. Character classes follow Rust's definitions (char::is_whitespace = White_Space,
 * is_numeric = N*, punctuation = ASCII punctuation or P*).
 */
import { XverseError } from "../errors.js";
import { type Piece, type SplitBehavior, PieceBuilder, endOf, prependPiece, splitPiece, startOf, subPiece, withText } from "./piece.js";
import { compileHfPattern, regexPattern } from "./regex.js";

/** Where pieces go: an array, or the next stage (pieces are then tokenized as they come, never all held). */
export interface PieceSink {
  push(p: Piece): unknown;
}

/** Cuts one piece, handing the results to `out` in order. */
export type PreTokenizer = (p: Piece, out: PieceSink) => void;

type Json = Record<string, any>;

export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

export function buildPreTokenizer(j: Json | null | undefined): PreTokenizer | null {
  if (j == null) return null;
  switch (j.type) {
    case "Sequence": {
      const steps = ((j.pretokenizers ?? []) as Json[]).map(buildPreTokenizer).filter((x): x is PreTokenizer => x !== null);
      return sequence(steps);
    }
    case "Metaspace":
      return metaspace(j);
    case "Digits":
      return charSplit(isNumeric, j.individual_digits ? "Isolated" : "Contiguous");
    case "Punctuation":
      return charSplit(isPunctuation, behaviorOf(j.behavior ?? "Isolated"));
    case "Whitespace": {
      const pat = regexPattern("\\w+|[^\\w\\s]+", "pre_tokenizer Whitespace");
      return (p, out) => splitPiece(p, pat.find(p.s), "Removed", out, true);
    }
    case "WhitespaceSplit":
      return charSplit(isWhitespace, "Removed");
    case "BertPreTokenizer":
      return sequence([charSplit(isWhitespace, "Removed"), charSplit(isPunctuation, "Isolated")]);
    case "CharDelimiterSplit": {
      const d = String(j.delimiter);
      return charSplit((cp) => cp === d.codePointAt(0), "Removed");
    }
    case "Split": {
      const pat = compileHfPattern(j.pattern, "pre_tokenizer Split");
      const behavior = behaviorOf(j.behavior);
      const invert = j.invert === true;
      return (p, out) => splitPiece(p, pat.find(p.s), behavior, out, invert);
    }
    case "ByteLevel":
      return byteLevel(j.add_prefix_space !== false, j.use_regex !== false);
    default:
      throw new XverseError("unsupported", `pre_tokenizer type ${j.type} is not supported`);
  }
}

function behaviorOf(b: unknown): SplitBehavior {
  if (b === "Removed" || b === "Isolated" || b === "MergedWithPrevious" || b === "MergedWithNext" || b === "Contiguous") return b;
  throw new XverseError("unsupported", `pre_tokenizer split behavior ${String(b)} is not supported`);
}

/** Marks a pre-tokenizer that only isolates single characters (so consecutive ones can be fused). */
const ISOLATES = new WeakMap<PreTokenizer, (cp: number) => boolean>();

function sequence(input: PreTokenizer[]): PreTokenizer {
  // Consecutive "isolate each matching character" steps (Digits individual, Punctuation Isolated) give the same
  // pieces as one step isolating characters matching either: an isolated character is never split again.
  const steps: PreTokenizer[] = [];
  for (const s of input) {
    const t = ISOLATES.get(s);
    const prev = steps.length > 0 ? ISOLATES.get(steps[steps.length - 1]) : undefined;
    if (t !== undefined && prev !== undefined) {
      const both = (cp: number): boolean => prev(cp) || t(cp);
      steps[steps.length - 1] = charSplit(memo(both), "Isolated");
    } else steps.push(s);
  }
  if (steps.length === 0) return (p, out) => void out.push(p);
  if (steps.length === 1) return steps[0];
  // Depth first: each piece a step produces goes straight into the next step, so a long text never has all its
  // intermediate pieces alive at once (that is what made the garbage collector copy them around).
  return (p, out) => {
    let sink: PieceSink = out;
    for (let k = steps.length - 1; k >= 1; k--) {
      const step = steps[k];
      const next = sink;
      sink = { push: (q: Piece) => step(q, next) };
    }
    steps[0](p, sink);
  };
}

/** Memoized code point predicate: a table for the BMP, computed on first sight of each character. */
function charTest(re: RegExp, extra?: (cp: number) => boolean): (cp: number) => boolean {
  return memo((cp: number): boolean => (extra !== undefined && extra(cp)) || re.test(String.fromCodePoint(cp)));
}

function memo(compute: (cp: number) => boolean): (cp: number) => boolean {
  const table = new Uint8Array(65536);
  const astral = new Map<number, boolean>();
  return (cp) => {
    if (cp < 65536) {
      let v = table[cp];
      if (v === 0) {
        v = compute(cp) ? 2 : 1;
        table[cp] = v;
      }
      return v === 2;
    }
    let v = astral.get(cp);
    if (v === undefined) astral.set(cp, (v = compute(cp)));
    return v;
  };
}

export const isNumeric = charTest(/^\p{N}$/u);
export const isWhitespace = charTest(/^\p{White_Space}$/u);
export const isPunctuation = charTest(/^\p{P}$/u, (cp) => cp < 128 && /[!-\/:-@\[-`{-~]/.test(String.fromCharCode(cp)));

/** Splits around characters matching `test`; the fast path for single-character delimiters. */
function charSplit(test: (cp: number) => boolean, behavior: SplitBehavior): PreTokenizer {
  const f = charSplitImpl(test, behavior);
  if (behavior === "Isolated") ISOLATES.set(f, test);
  return f;
}

function charSplitImpl(test: (cp: number) => boolean, behavior: SplitBehavior): PreTokenizer {
  return (p, out) => {
    const s = p.s;
    const n = s.length;
    if (behavior === "Isolated" || behavior === "Removed" || behavior === "Contiguous") {
      let seg = 0;
      let runStart = -1; // Contiguous: start of the current run of matches
      for (let i = 0; i < n; ) {
        const c = s.charCodeAt(i);
        const cp = c >= 0xd800 && c <= 0xdbff && i + 1 < n ? s.codePointAt(i)! : c;
        const len = cp > 0xffff ? 2 : 1;
        if (test(cp)) {
          if (behavior === "Contiguous") {
            if (runStart < 0) {
              if (i > seg) out.push(subPiece(p, seg, i));
              runStart = i;
            }
          } else {
            if (i > seg) out.push(subPiece(p, seg, i));
            if (behavior === "Isolated") out.push(subPiece(p, i, i + len));
          }
          seg = i + len;
        } else if (runStart >= 0) {
          out.push(subPiece(p, runStart, i));
          runStart = -1;
          seg = i;
        }
        i += len;
      }
      if (runStart >= 0) out.push(runStart === 0 && seg === n ? p : subPiece(p, runStart, n));
      else if (seg === 0) { if (n > 0) out.push(p); }
      else if (seg < n) out.push(subPiece(p, seg, n));
      return;
    }
    const ranges: number[] = [];
    for (let i = 0; i < n; ) {
      const cp = s.codePointAt(i)!;
      const len = cp > 0xffff ? 2 : 1;
      if (test(cp)) ranges.push(i, i + len);
      i += len;
    }
    splitPiece(p, ranges, behavior, out);
  };
}

function metaspace(j: Json): PreTokenizer {
  const rep = String(j.replacement ?? "\u2581");
  // Legacy files say add_prefix_space (true = always); current ones prepend_scheme + split.
  let scheme: string = j.prepend_scheme ?? (j.add_prefix_space === false ? "never" : "always");
  if (j.prepend_scheme === undefined && j.add_prefix_space === false) scheme = "never";
  if (scheme !== "always" && scheme !== "first" && scheme !== "never") {
    throw new XverseError("unsupported", `pre_tokenizer Metaspace prepend_scheme ${scheme} is not supported`);
  }
  const split = j.split !== false;
  return (p, out) => {
    if (p.s.length === 0) return;
    let q = p.s.includes(" ") ? replaceSpaces(p, rep) : p;
    if (!q.s.startsWith(rep) && (scheme === "always" || (scheme === "first" && startOf(q, 0) === 0))) {
      q = prependPiece(q, rep);
    }
    if (!split) {
      out.push(q);
      return;
    }
    // MergedWithNext on the replacement character = cut before each occurrence.
    const s = q.s;
    let seg = 0;
    for (let i = s.indexOf(rep, 1); i !== -1; i = s.indexOf(rep, i + rep.length)) {
      if (i > seg) out.push(subPiece(q, seg, i));
      seg = i;
    }
    out.push(seg === 0 ? q : subPiece(q, seg, s.length));
  };
}

function replaceSpaces(p: Piece, rep: string): Piece {
  if (rep.length === 1) return withText(p, p.s.replaceAll(" ", rep));
  const b = new PieceBuilder();
  let prev = 0;
  for (let i = p.s.indexOf(" "); i !== -1; i = p.s.indexOf(" ", i + 1)) {
    b.copy(p, prev, i);
    b.push(rep, startOf(p, i), endOf(p, i));
    prev = i + 1;
  }
  b.copy(p, prev, p.s.length);
  return b.build();
}

/** GPT-2's byte → printable character table. */
export const BYTE_TO_CHAR: string[] = (() => {
  const t: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    t[b] = String.fromCharCode(printable ? b : 256 + n++);
  }
  return t;
})();

export const CHAR_TO_BYTE: Map<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

const encoder = new TextEncoder();

/** Text → its UTF-8 bytes spelled with BYTE_TO_CHAR. */
export function toByteLevel(s: string): string {
  let r = "";
  for (const b of encoder.encode(s)) r += BYTE_TO_CHAR[b];
  return r;
}

function byteLevel(addPrefixSpace: boolean, useRegex: boolean): PreTokenizer {
  const pat = regexPattern(GPT2_PATTERN, "pre_tokenizer ByteLevel");
  return (p, out) => {
    let q = p;
    if (addPrefixSpace && !q.s.startsWith(" ")) q = prependPiece(q, " ");
    const parts: Piece[] = [];
    if (useRegex) splitPiece(q, pat.find(q.s), "Isolated", parts);
    else parts.push(q);
    for (const r of parts) {
      // Every byte of a character aligns to that character.
      const b = new PieceBuilder();
      for (let i = 0; i < r.s.length; ) {
        const len = r.s.codePointAt(i)! > 0xffff ? 2 : 1;
        b.push(toByteLevel(r.s.slice(i, i + len)), startOf(r, i), endOf(r, i + len - 1));
        i += len;
      }
      out.push(b.build());
    }
  };
}
