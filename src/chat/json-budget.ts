/**
 * The fewest tokens that can still finish a call from a recognizer state. The constrained decoder only allows a
 * token when what is left after it fits in the tokens left, so a forced call always closes before max_new_tokens —
 * otherwise a random model wandering through optional fields can be cut off mid-JSON. Fixed text (the call's
 * markers, key names, enum values, true/false/null) is priced by the grammar's `litCost` — the fewest vocabulary
 * pieces that spell it (constrained.ts) — and everything else at one token per character (every character the
 * shortest completion needs exists as a one-character token). Summing per-piece minima over-counts at most (a
 * token may span two pieces), so the price is an upper bound the decoder can always meet.
 */
import { numberEnds, type CallRecognizer, type Frame, type Node, type ObjNode } from "./json-prefix.js";
import { minOf } from "../arrays.js";

/** Tokens needed to write a fixed text. */
export type LitCost = (s: string) => number;
/** The default price: one token per character. */
export const charCost: LitCost = (s) => s.length;

const memos = new WeakMap<LitCost, WeakMap<Node, number>>();
const PARAMS_LIT = ',"parameters":';

/** Shortest serialization (in `lit`'s units) of any value the node accepts. */
export function minValueLength(n: Node, lit: LitCost = charCost): number {
  let memo = memos.get(lit);
  if (!memo) memos.set(lit, (memo = new WeakMap()));
  const hit = memo.get(n);
  if (hit !== undefined) return hit;
  let v: number;
  switch (n.k) {
    case "any":
    case "num":
      v = 1;
      break;
    case "str":
      v = n.enum ? minOf(n.enum.map((e) => lit(JSON.stringify(e)))) : 2 + n.minLength;
      break;
    case "lits":
      v = minOf(n.values.map(lit));
      break;
    case "obj":
      v = 1 + requiredCost(n, [], false, lit);
      break;
    case "arr":
      v = 2 + n.minItems * minValueLength(n.items, lit) + Math.max(0, n.minItems - 1);
      break;
    case "union":
      v = minOf(n.options.map((o) => minValueLength(o, lit)));
      break;
  }
  memo.set(n, v);
  return v;
}

function valueNode(n: ObjNode, key: string): Node {
  return n.props ? n.props.get(key) ?? n.free : n.free;
}

function entryCost(n: ObjNode, key: string, lit: LitCost): number {
  return lit(JSON.stringify(key) + ":") + minValueLength(valueNode(n, key), lit);
}

/** The required entries not yet written, their commas, and the closing brace. */
function requiredCost(n: ObjNode, used: readonly string[], hasEntries: boolean, lit: LitCost): number {
  const left = n.required.filter((r) => !used.includes(r));
  if (!left.length) return 1;
  const entries = left.reduce((s, r) => s + entryCost(n, r, lit), 0);
  return entries + (hasEntries ? left.length : left.length - 1) + 1;
}

/** What the rest of an enum value needs once `buf` of it is written: its remaining (escaped) text and the quote. */
const enumRest = (e: string, buf: string): string => JSON.stringify(e.slice(buf.length)).slice(1);

function strRemaining(f: Extract<Frame, { t: "str" }>, lit: LitCost): number {
  const n = f.n;
  if (!f.open) return minValueLength(n, lit); // nothing written yet: the whole string
  const esc = f.esc ? 1 : 0;
  if (n.enum) return minOf(n.enum.filter((e) => e.startsWith(f.buf)).map((e) => lit(enumRest(e, f.buf))));
  return Math.max(0, n.minLength - f.len) + 1 + esc;
}

function own(f: Frame, hasChild: boolean, r: CallRecognizer, lit: LitCost): number {
  switch (f.t) {
    case "lit":
      return lit(f.s.slice(f.i));
    case "val":
      return minValueLength(f.n, lit);
    case "str":
      return strRemaining(f, lit);
    case "num":
      if (numberEnds(f.s, f.n)) return 0;
      // a positive number written as 0 so far needs ".1" (or "1" after "0.")
      return f.n.sign === "pos" && f.s === "0" ? 2 : 1;
    case "lits":
      return minOf(f.values.filter((v) => v.startsWith(f.buf)).map((v) => lit(v.slice(f.buf.length))));
    case "obj": {
      const n = f.n;
      switch (f.ph) {
        case "open":
          return minValueLength(n, lit);
        case "first":
          return requiredCost(n, f.used, false, lit);
        case "next": {
          if (n.required.some((k) => !f.used.includes(k))) return requiredCost(n, f.used, false, lit);
          const keys = n.props ? [...n.props.keys()].filter((k) => !f.used.includes(k)) : ["a"];
          return minOf(keys.map((k) => entryCost(n, k, lit))) + 1;
        }
        case "colon":
          return 1 + minValueLength(valueNode(n, f.key), lit) + requiredCost(n, [...f.used, f.key], true, lit);
        case "value":
          return requiredCost(n, [...f.used, f.key], true, lit);
        case "after":
          return requiredCost(n, f.used, true, lit);
        default:
          return 1;
      }
    }
    case "arr": {
      const n = f.n;
      const ml = minValueLength(n.items, lit);
      const tail = (c: number): number => (c >= n.minItems ? 1 : (n.minItems - c) * (ml + 1) + 1);
      if (f.ph === "open") return minValueLength(n, lit);
      if (f.ph === "first") return n.minItems === 0 ? 1 : n.minItems * ml + (n.minItems - 1) + 1;
      if (f.ph === "next") return (hasChild ? 0 : ml) + tail(f.count + 1);
      return tail(f.count);
    }
    case "call":
      return callCost(f, hasChild, r, null, lit);
  }
}

/** What the call frame still needs after its active child (if any); `name` is the tool-name frame being written. */
function callCost(f: Extract<Frame, { t: "call" }>, hasChild: boolean, r: CallRecognizer, name: Frame | null, lit: LitCost): number {
  const g = r.grammar;
  const params = (t: string): number => minValueLength(g.value ?? g.tools.get(t)!, lit);
  // a document (no api_name): prefix, value, suffix — phase 0 is before any of it, 2 inside the prefix
  if (g.value && f.ph <= 1) return lit(g.prefix) + params("") + lit(g.suffix);
  switch (f.ph) {
    case 2:
      return (hasChild ? 0 : lit(PARAMS_LIT)) + params(f.tool) + lit(g.suffix);
    case 3:
      return (hasChild ? 0 : params(f.tool)) + lit(g.suffix);
    case 4:
      return hasChild ? 0 : lit(g.suffix);
    case 0:
    case 1: {
      let best = Infinity;
      for (const t of g.tools.keys()) {
        let nameCost = lit(JSON.stringify(t));
        if (name && name.t === "str" && name.open) {
          if (!t.startsWith(name.buf)) continue;
          nameCost = lit(enumRest(t, name.buf));
        }
        best = Math.min(best, nameCost + lit(PARAMS_LIT) + params(t));
      }
      const head = f.ph === 0 && !hasChild ? lit(g.prefix + '"api_name":') : 0;
      return head + best + lit(g.suffix);
    }
    default:
      return 0;
  }
}

function from(fs: readonly Frame[], i: number, r: CallRecognizer, lit: LitCost): number {
  const f = fs[i];
  const child = i + 1 < fs.length ? fs[i + 1] : null;
  // a key / tool name being written decides what comes after it: price each candidate whole
  if (f.t === "obj" && f.ph === "key" && child && child.t === "str") {
    const n = f.n;
    if (!n.props) return strRemaining(child, lit) + 1 + minValueLength(n.free, lit) + requiredCost(n, [...f.used, child.buf], true, lit);
    let best = Infinity;
    for (const k of n.props.keys()) {
      if (f.used.includes(k) || !k.startsWith(child.buf)) continue;
      best = Math.min(best, lit(enumRest(k, child.buf) + ":") + minValueLength(n.props.get(k)!, lit) + requiredCost(n, [...f.used, k], true, lit));
    }
    return best;
  }
  if (f.t === "call" && f.ph === 1 && child) return callCost(f, true, r, child, lit);
  return own(f, child !== null, r, lit) + (child ? from(fs, i + 1, r, lit) : 0);
}

/**
 * The fewest tokens that complete the call or document (0 once complete; Infinity when it cannot be completed),
 * fixed text priced by the grammar's litCost (default: one token per character).
 */
export function minCompletion(r: CallRecognizer): number {
  return r.frames.length ? from(r.frames, 0, r, r.grammar.litCost ?? charCost) : 0;
}
