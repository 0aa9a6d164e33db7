/**
 * The fewest characters that can still finish a call from a recognizer state. The constrained decoder only
 * allows a token when what is left after it fits in the tokens left (every character the shortest completion
 * needs exists as a one-character token), so a forced call always closes before max_new_tokens — otherwise a
 * random model wandering through optional fields can be cut off mid-JSON.
 */
import type { CallRecognizer, Frame, Node, ObjNode } from "./json-prefix.js";
import { minOf } from "../arrays.js";

const memo = new WeakMap<Node, number>();
const jlen = (s: string): number => JSON.stringify(s).length;
const PARAMS_LIT = ',"parameters":'.length;

/** Shortest serialization of any value the node accepts. */
export function minValueLength(n: Node): number {
  const hit = memo.get(n);
  if (hit !== undefined) return hit;
  let v: number;
  switch (n.k) {
    case "any":
    case "num":
      v = 1;
      break;
    case "str":
      v = n.enum ? minOf(n.enum.map(jlen)) : 2 + n.minLength;
      break;
    case "lits":
      v = minOf(n.values.map((x) => x.length));
      break;
    case "obj":
      v = 1 + requiredCost(n, [], false);
      break;
    case "arr":
      v = 2 + n.minItems * minValueLength(n.items) + Math.max(0, n.minItems - 1);
      break;
    case "union":
      v = minOf(n.options.map(minValueLength));
      break;
  }
  memo.set(n, v);
  return v;
}

function valueNode(n: ObjNode, key: string): Node {
  return n.props ? n.props.get(key) ?? n.free : n.free;
}

function entryCost(n: ObjNode, key: string): number {
  return jlen(key) + 1 + minValueLength(valueNode(n, key));
}

/** The required entries not yet written, their commas, and the closing brace. */
function requiredCost(n: ObjNode, used: readonly string[], hasEntries: boolean): number {
  const left = n.required.filter((r) => !used.includes(r));
  if (!left.length) return 1;
  const entries = left.reduce((s, r) => s + entryCost(n, r), 0);
  return entries + (hasEntries ? left.length : left.length - 1) + 1;
}

function strRemaining(f: Extract<Frame, { t: "str" }>): number {
  const n = f.n;
  if (!f.open) return n.enum ? minOf(n.enum.map(jlen)) : 2 + n.minLength;
  const esc = f.esc ? 1 : 0;
  if (n.enum) return minOf(n.enum.filter((e) => e.startsWith(f.buf)).map((e) => e.length - f.buf.length)) + 1;
  return Math.max(0, n.minLength - f.len) + 1 + esc;
}

function own(f: Frame, hasChild: boolean, r: CallRecognizer): number {
  switch (f.t) {
    case "lit":
      return f.s.length - f.i;
    case "val":
      return minValueLength(f.n);
    case "str":
      return strRemaining(f);
    case "num":
      return /^-?(0|[1-9]\d*)(\.\d+)?$/.test(f.s) ? 0 : 1;
    case "lits":
      return minOf(f.values.filter((v) => v.startsWith(f.buf)).map((v) => v.length - f.buf.length));
    case "obj": {
      const n = f.n;
      switch (f.ph) {
        case "open":
          return minValueLength(n);
        case "first":
          return requiredCost(n, f.used, false);
        case "next": {
          if (n.required.some((k) => !f.used.includes(k))) return requiredCost(n, f.used, false);
          const keys = n.props ? [...n.props.keys()].filter((k) => !f.used.includes(k)) : ["a"];
          return minOf(keys.map((k) => entryCost(n, k))) + 1;
        }
        case "colon":
          return 1 + minValueLength(valueNode(n, f.key)) + requiredCost(n, [...f.used, f.key], true);
        case "value":
          return requiredCost(n, [...f.used, f.key], true);
        case "after":
          return requiredCost(n, f.used, true);
        default:
          return 1;
      }
    }
    case "arr": {
      const n = f.n;
      const ml = minValueLength(n.items);
      const tail = (c: number): number => (c >= n.minItems ? 1 : (n.minItems - c) * (ml + 1) + 1);
      if (f.ph === "open") return minValueLength(n);
      if (f.ph === "first") return n.minItems === 0 ? 1 : n.minItems * ml + (n.minItems - 1) + 1;
      if (f.ph === "next") return (hasChild ? 0 : ml) + tail(f.count + 1);
      return tail(f.count);
    }
    case "call":
      return callCost(f, hasChild, r, null);
  }
}

/** What the call frame still needs after its active child (if any); `name` is the tool-name frame being written. */
function callCost(f: Extract<Frame, { t: "call" }>, hasChild: boolean, r: CallRecognizer, name: Frame | null): number {
  const g = r.grammar;
  const params = (t: string): number => minValueLength(g.value ?? g.tools.get(t)!);
  // a document (no api_name): prefix, value, suffix — phase 0 is before any of it, 2 inside the prefix
  if (g.value && f.ph <= 1) return g.prefix.length + params("") + g.suffix.length;
  switch (f.ph) {
    case 2:
      return (hasChild ? 0 : PARAMS_LIT) + params(f.tool) + g.suffix.length;
    case 3:
      return (hasChild ? 0 : params(f.tool)) + g.suffix.length;
    case 4:
      return hasChild ? 0 : g.suffix.length;
    case 0:
    case 1: {
      let best = Infinity;
      for (const t of g.tools.keys()) {
        let nameCost = jlen(t);
        if (name && name.t === "str" && name.open) {
          if (!t.startsWith(name.buf)) continue;
          nameCost = t.length - name.buf.length + 1;
        }
        best = Math.min(best, nameCost + PARAMS_LIT + params(t));
      }
      const head = f.ph === 0 && !hasChild ? g.prefix.length + '"api_name":'.length : 0;
      return head + best + g.suffix.length;
    }
    default:
      return 0;
  }
}

function from(fs: readonly Frame[], i: number, r: CallRecognizer): number {
  const f = fs[i];
  const child = i + 1 < fs.length ? fs[i + 1] : null;
  // a key / tool name being written decides what comes after it: price each candidate whole
  if (f.t === "obj" && f.ph === "key" && child && child.t === "str") {
    const n = f.n;
    if (!n.props) return strRemaining(child) + 1 + minValueLength(n.free) + requiredCost(n, [...f.used, child.buf], true);
    let best = Infinity;
    for (const k of n.props.keys()) {
      if (f.used.includes(k) || !k.startsWith(child.buf)) continue;
      best = Math.min(best, k.length - child.buf.length + 1 + 1 + minValueLength(n.props.get(k)!) + requiredCost(n, [...f.used, k], true));
    }
    return best;
  }
  if (f.t === "call" && f.ph === 1 && child) return callCost(f, true, r, child);
  return own(f, child !== null, r) + (child ? from(fs, i + 1, r) : 0);
}

/** The fewest characters that complete the call (0 once complete; Infinity when it cannot be completed). */
export function minCompletion(r: CallRecognizer): number {
  return r.frames.length ? from(r.frames, 0, r) : 0;
}
