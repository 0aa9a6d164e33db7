/**
 * A character-level pushdown recognizer for "is this text a valid prefix of a tool call that meets the tool's
 * schema?", used by the constrained decoder to mask tokens. It accepts compact JSON only (no insignificant
 * whitespace) and bounds every open-ended thing — string length, number digits, array items, free-form object
 * keys — so that even a random model, forced through it, reaches the closing marker in bounded steps.
 * Feeding is by code point; `clone()` is cheap (a handful of small frames) because the decoder clones at every
 * node of the vocabulary trie it walks.
 */
import type { JsonSchema } from "./schema.js";

export interface PrefixLimits {
  /** Longest string value generated (code points), unless the schema's maxLength is smaller. Default 32. */
  maxStringLength: number;
  /** Most array items, unless the schema's maxItems is smaller. Default 4. */
  maxItems: number;
  /** Most keys in an object whose schema lists no properties. Default 4. */
  maxFreeProperties: number;
  /** Deeper than this, values are scalars. Default 6. */
  maxDepth: number;
  /** Most integer-part digits of a number (at most 15, so values stay exact). Default 15. */
  maxNumberDigits: number;
}

export const DEFAULT_LIMITS: PrefixLimits = { maxStringLength: 32, maxItems: 4, maxFreeProperties: 4, maxDepth: 6, maxNumberDigits: 15 };

export type StrNode = { k: "str"; enum: string[] | null; maxLength: number; minLength: number };
/** sign: "nonneg" (minimum 0) writes no minus; "pos" (exclusiveMinimum 0, or an integer's minimum 1) also no zero. */
export type NumNode = { k: "num"; integer: boolean; maxDigits: number; sign?: "nonneg" | "pos" };
export type ObjNode = { k: "obj"; props: Map<string, Node> | null; required: string[]; maxProps: number; free: Node };
export type ArrNode = { k: "arr"; items: Node; minItems: number; maxItems: number };
export type Node =
  | { k: "any"; maxLength: number; maxDigits: number }
  | StrNode
  | NumNode
  | { k: "lits"; values: string[] }
  | ObjNode
  | ArrNode
  | { k: "union"; options: Node[] };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Schema → recognizer node. Unknown or missing types become "any scalar" (string, number, boolean, null).
 * `$ref`s ("#", "#/$defs/x", "#/definitions/x", any JSON pointer into the root) are resolved against `root`.
 * A recursive schema is unrolled to `limits.maxDepth`; below that only the way out is kept (required
 * properties only, arrays at their minItems), so the text still closes and still validates.
 */
export function compileSchema(schema: JsonSchema | undefined, limits: PrefixLimits = DEFAULT_LIMITS, depth = 0, root: JsonSchema | undefined = schema): Node {
  const any: Node = { k: "any", maxLength: limits.maxStringLength, maxDigits: Math.min(15, limits.maxNumberDigits) };
  // past the unrolling depth a schema that still requires itself has no finite instance: give up on it there
  if (!isObj(schema) || depth > limits.maxDepth + 8) return any;
  const deep = depth >= limits.maxDepth;
  const sub = (s: unknown): Node => compileSchema(s as JsonSchema, limits, depth + 1, root);
  if (typeof schema.$ref === "string") {
    const target = resolveRef(root, schema.$ref);
    return target ? compileSchema(target, limits, depth + 1, root) : any;
  }
  const alts = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(alts) && alts.length) return { k: "union", options: alts.map(sub) };
  const values = Array.isArray(schema.enum) ? schema.enum : "const" in schema ? [schema.const] : null;
  if (values) {
    if (values.every((v) => typeof v === "string")) return { k: "str", enum: values as string[], maxLength: Infinity, minLength: 0 };
    return { k: "lits", values: values.map((v) => JSON.stringify(v)) };
  }
  const types = Array.isArray(schema.type) ? (schema.type as string[]) : typeof schema.type === "string" ? [schema.type] : [];
  if (types.length > 1) return { k: "union", options: types.map((t) => compileSchema({ ...schema, type: t }, limits, depth, root)) };
  const t = types[0] ?? (isObj(schema.properties) ? "object" : isObj(schema.items) ? "array" : undefined);
  switch (t) {
    case "string": {
      const max = typeof schema.maxLength === "number" ? Math.min(schema.maxLength, Math.max(limits.maxStringLength, (schema.minLength as number) ?? 0)) : limits.maxStringLength;
      return { k: "str", enum: null, maxLength: max, minLength: typeof schema.minLength === "number" ? schema.minLength : 0 };
    }
    case "integer":
    case "number":
      return { k: "num", integer: t === "integer", maxDigits: Math.min(15, limits.maxNumberDigits), ...numberSign(schema, t === "integer") };
    case "boolean":
      return { k: "lits", values: ["true", "false"] };
    case "null":
      return { k: "lits", values: ["null"] };
    case "object": {
      const listed = Array.isArray(schema.required) ? (schema.required as string[]) : [];
      let props: Map<string, Node> | null = null;
      if (isObj(schema.properties)) {
        const entries = Object.entries(schema.properties).filter(([k]) => !deep || listed.includes(k));
        props = new Map(entries.map(([k, s]) => [k, sub(s)]));
      } else if (schema.additionalProperties === false || deep) {
        props = new Map(); // no keys may be written: {}
      }
      const required = listed.filter((r) => !props || props.has(r));
      const free = isObj(schema.additionalProperties) ? sub(schema.additionalProperties) : any;
      return { k: "obj", props, required, maxProps: limits.maxFreeProperties, free };
    }
    case "array": {
      const minItems = typeof schema.minItems === "number" ? schema.minItems : 0;
      const cap = deep ? 0 : Math.min(typeof schema.maxItems === "number" ? schema.maxItems : limits.maxItems, limits.maxItems);
      return { k: "arr", items: sub(schema.items), minItems, maxItems: Math.max(minItems, cap) };
    }
    default:
      return any;
  }
}

/**
 * The bounds the decoder can honour. Every number it writes has at most 15 integer digits, so a bound at or beyond
 * ±1e15 (zod's int() writes ±(2^53 − 1)) holds anyway; a lower bound of 0 (minimum 0: no minus sign) or just
 * above 0 (exclusiveMinimum 0, an integer's minimum 1: no minus, not zero) is enforced; other bounds are refused
 * by schemaProblems (numberBoundProblem says which).
 */
function numberSign(schema: JsonSchema, integer: boolean): { sign?: "nonneg" | "pos" } {
  const min = schema.minimum, xmin = schema.exclusiveMinimum;
  if (xmin === 0 || (integer && typeof min === "number" && min > 0 && min <= 1)) return { sign: "pos" };
  if (min === 0 || (typeof min === "number" && min > -1 && min < 0 && integer)) return { sign: "nonneg" };
  return {};
}

/** Why a numeric bound cannot be enforced, or null when it can (see numberSign). */
export function numberBoundProblem(key: string, v: unknown, integer: boolean): string | null {
  if (typeof v !== "number" || !Number.isFinite(v)) return `"${key}" must be a number`;
  const WIDE = 1e15;
  if ((key === "minimum" || key === "exclusiveMinimum") && v <= -WIDE) return null;
  if ((key === "maximum" || key === "exclusiveMaximum") && v >= WIDE) return null;
  if (key === "minimum" && (v === 0 || (integer && v > -1 && v <= 1))) return null;
  if (key === "exclusiveMinimum" && v === 0) return null;
  return `"${key}": ${v} is not supported (only bounds of ±1e15 or wider, minimum 0, exclusiveMinimum 0${integer ? ", minimum 1" : ""})`;
}

/** A local `$ref` ("#", "#/$defs/a", "#/definitions/a~1b") → the schema it names, or null. */
export function resolveRef(root: JsonSchema | undefined, ref: string): JsonSchema | null {
  if (!ref.startsWith("#")) return null;
  let at: unknown = root;
  const path = ref.slice(1);
  if (path === "") return isObj(at) ? at : null;
  if (!path.startsWith("/")) return null;
  for (const raw of path.slice(1).split("/")) {
    let key: string;
    try {
      key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    } catch {
      return null; // a malformed %-escape ("#/%d") names nothing: unresolved, like a missing key (fuzz finding)
    }
    if (!isObj(at) && !Array.isArray(at)) return null;
    at = (at as Record<string, unknown>)[key];
  }
  return isObj(at) ? at : null;
}

/** One open construct on the recognizer's stack (exported for json-budget.ts, which prices what is left). */
export type Frame =
  | { t: "lit"; s: string; i: number }
  | { t: "val"; n: Node }
  | { t: "str"; n: StrNode; open: boolean; buf: string; len: number; esc: boolean; forbid: string[] | null }
  | { t: "num"; n: NumNode; s: string }
  | { t: "lits"; values: string[]; buf: string }
  | { t: "obj"; n: ObjNode; ph: "open" | "first" | "key" | "colon" | "value" | "after" | "next"; used: string[]; key: string }
  | { t: "arr"; n: ArrNode; ph: "open" | "first" | "after" | "next"; count: number }
  | { t: "call"; ph: number; tool: string };

const enum R { Reject, Consumed, Restep, Pass, Close }

const ESCAPES: Record<string, string> = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
const ESCAPED = new Set(Object.values(ESCAPES));
const NUM = /^-?(0|[1-9]\d*)(\.\d+)?$/;

/** Where the call text starts: right after `<|startofthink|>` (the model wrote it) or before it (forced). */
export interface CallGrammar {
  /** Literal text before the JSON object's first key, e.g. "```JSON\n{". */
  prefix: string;
  /** Literal text after the parameters object, e.g. "}```<|endofthink|>". */
  suffix: string;
  /** Tool name → compiled parameters node. */
  tools: Map<string, Node>;
  /**
   * A JSON document instead of a call (response_format): the text is prefix + one value of this node + suffix,
   * with no api_name / parameters wrapper; `tools` is then unused.
   */
  value?: Node;
  /** Tokens needed to write a fixed text (the budget's price of markers, keys, literals); default its length. */
  litCost?: (s: string) => number;
}

/** The grammar for a JSON reply of `node` (response_format json_object / json_schema): nothing around it. */
export function documentGrammar(node: Node): CallGrammar {
  return { prefix: "", suffix: "", tools: new Map(), value: node };
}

export class CallRecognizer {
  private constructor(private stack: Frame[], readonly grammar: CallGrammar) {}

  static start(g: CallGrammar): CallRecognizer {
    return new CallRecognizer([{ t: "call", ph: 0, tool: "" }], g);
  }

  clone(): CallRecognizer {
    return new CallRecognizer(this.stack.map((f) => (f.t === "obj" ? { ...f, used: [...f.used] } : { ...f })), this.grammar);
  }

  /** True once the suffix has been matched: nothing more may follow. */
  get complete(): boolean {
    const f = this.stack[0];
    return this.stack.length === 1 && f.t === "call" && (f.ph === 5 || (f.ph === 4 && this.grammar.suffix === ""));
  }

  /** The open constructs, outermost first (read-only view). */
  get frames(): readonly Frame[] {
    return this.stack;
  }

  /**
   * The innermost frame when it is inside a plain string (no enum, no pending escape):
   * there an ordinary character only appends to `buf`, which the constrained decoder exploits to walk the
   * vocabulary without cloning. Mutate it only to append and then undo.
   */
  plainString(): Extract<Frame, { t: "str" }> | null {
    const f = this.stack[this.stack.length - 1];
    // a free-form key (forbid: the keys already used) differs only at its closing quote, which is walked anyway
    return f && f.t === "str" && f.open && !f.esc && !f.n.enum ? f : null;
  }

  /** The tool name, once chosen. */
  get tool(): string {
    const f = this.stack[0];
    return f.t === "call" ? f.tool : "";
  }

  /** Feeds a whole string; false (and a broken state: discard it) when it is not a valid continuation. */
  feedText(text: string): boolean {
    for (const ch of text) if (!this.feed(ch)) return false;
    return true;
  }

  /** Feeds one code point. */
  feed(ch: string): boolean {
    for (;;) {
      const top = this.stack[this.stack.length - 1];
      if (!top) return false;
      const r = this.step(top, ch);
      if (r === R.Reject) return false;
      if (r === R.Consumed) return true;
      if (r === R.Restep) continue;
      this.stack.pop();
      this.childDone(top.t === "str" ? top.buf : "");
      if (r === R.Close) return true;
    }
  }

  private push(f: Frame): void {
    this.stack.push(f);
  }

  private childDone(value: string): void {
    const p = this.stack[this.stack.length - 1];
    if (!p) return;
    if (p.t === "obj") {
      if (p.ph === "key") {
        p.key = value;
        p.ph = "colon";
      } else {
        p.used.push(p.key);
        p.ph = "after";
      }
    } else if (p.t === "arr") {
      p.count++;
      p.ph = "after";
    } else if (p.t === "call") {
      if (p.ph === 1) p.tool = value;
      p.ph++;
    }
  }

  private remainingKeys(f: Extract<Frame, { t: "obj" }>): boolean {
    return f.n.props ? f.used.length < f.n.props.size : f.used.length < f.n.maxProps;
  }

  private keyFrame(f: Extract<Frame, { t: "obj" }>): Frame {
    if (f.n.props) {
      const left = [...f.n.props.keys()].filter((k) => !f.used.includes(k));
      return { t: "str", n: { k: "str", enum: left, maxLength: Infinity, minLength: 0 }, open: true, buf: "", len: 0, esc: false, forbid: null };
    }
    return { t: "str", n: { k: "str", enum: null, maxLength: 24, minLength: 1 }, open: true, buf: "", len: 0, esc: false, forbid: f.used };
  }

  private requiredDone(f: Extract<Frame, { t: "obj" }>): boolean {
    return f.n.required.every((r) => f.used.includes(r));
  }

  /** The frame a value of node `n` starting with `ch` needs, or null when no value of `n` starts so. */
  private valueFrame(n: Node, ch: string): Frame | null {
    switch (n.k) {
      case "str":
        return ch === '"' ? { t: "str", n, open: false, buf: "", len: 0, esc: false, forbid: null } : null;
      case "num":
        return canExtendNumber("", ch, n) ? { t: "num", n, s: "" } : null;
      case "lits":
        return n.values.some((v) => v.startsWith(ch)) ? { t: "lits", values: n.values, buf: "" } : null;
      case "obj":
        return ch === "{" ? { t: "obj", n, ph: "open", used: [], key: "" } : null;
      case "arr":
        return ch === "[" ? { t: "arr", n, ph: "open", count: 0 } : null;
      case "any":
        if (ch === '"') return this.valueFrame({ k: "str", enum: null, maxLength: n.maxLength, minLength: 0 }, ch);
        if (ch === "-" || (ch >= "0" && ch <= "9")) return { t: "num", n: { k: "num", integer: false, maxDigits: n.maxDigits }, s: "" };
        return this.valueFrame({ k: "lits", values: ["true", "false", "null"] }, ch);
      case "union":
        for (const o of n.options) {
          const f = this.valueFrame(o, ch);
          if (f) return f;
        }
        return null;
    }
  }

  private step(f: Frame, ch: string): R {
    switch (f.t) {
      case "lit":
        if (f.s[f.i] !== ch) return R.Reject;
        f.i++;
        return f.i === f.s.length ? R.Close : R.Consumed;
      case "val": {
        const nf = this.valueFrame(f.n, ch);
        if (!nf) return R.Reject;
        this.stack[this.stack.length - 1] = nf;
        return R.Restep;
      }
      case "str":
        return this.stepString(f, ch);
      case "num": {
        if (canExtendNumber(f.s, ch, f.n)) {
          f.s += ch;
          return R.Consumed;
        }
        return numberEnds(f.s, f.n) ? R.Pass : R.Reject;
      }
      case "lits": {
        const nb = f.buf + ch;
        if (f.values.some((v) => v.startsWith(nb))) {
          f.buf = nb;
          const longer = f.values.some((v) => v.length > nb.length && v.startsWith(nb));
          return f.values.includes(nb) && !longer ? R.Close : R.Consumed;
        }
        return f.values.includes(f.buf) ? R.Pass : R.Reject;
      }
      case "obj":
        return this.stepObject(f, ch);
      case "arr":
        return this.stepArray(f, ch);
      case "call":
        return this.stepCall(f, ch);
    }
  }

  private stepString(f: Extract<Frame, { t: "str" }>, ch: string): R {
    if (!f.open) {
      if (ch !== '"') return R.Reject;
      f.open = true;
      return R.Consumed;
    }
    const n = f.n;
    const fits = (c: string): boolean => (n.enum ? n.enum.some((e) => e.startsWith(f.buf + c)) : f.len < n.maxLength);
    if (f.esc) {
      const c = ESCAPES[ch];
      if (c === undefined || !fits(c)) return R.Reject;
      f.esc = false;
      f.buf += c;
      f.len++;
      return R.Consumed;
    }
    if (ch === '"') {
      if (f.len < n.minLength) return R.Reject;
      if (n.enum && !n.enum.includes(f.buf)) return R.Reject;
      if (f.forbid && f.forbid.includes(f.buf)) return R.Reject;
      return R.Close;
    }
    if (ch === "\\") {
      // only start an escape that some escaped character can finish, or the decoder could paint itself in
      if (![...ESCAPED].some(fits)) return R.Reject;
      f.esc = true;
      return R.Consumed;
    }
    if (ch.codePointAt(0)! < 0x20 || !fits(ch)) return R.Reject;
    f.buf += ch;
    f.len++;
    return R.Consumed;
  }

  private stepObject(f: Extract<Frame, { t: "obj" }>, ch: string): R {
    switch (f.ph) {
      case "open":
        if (ch !== "{") return R.Reject;
        f.ph = "first";
        return R.Consumed;
      case "first":
      case "next":
        if (ch === "}" && f.ph === "first" && this.requiredDone(f)) return R.Close;
        if (ch !== '"' || !this.remainingKeys(f)) return R.Reject;
        f.ph = "key";
        this.push(this.keyFrame(f));
        return R.Consumed;
      case "colon":
        if (ch !== ":") return R.Reject;
        f.ph = "value";
        this.push({ t: "val", n: f.n.props ? f.n.props.get(f.key)! : f.n.free });
        return R.Consumed;
      case "after":
        if (ch === "," && this.remainingKeys(f)) {
          f.ph = "next";
          return R.Consumed;
        }
        return ch === "}" && this.requiredDone(f) ? R.Close : R.Reject;
      default:
        return R.Reject;
    }
  }

  private stepArray(f: Extract<Frame, { t: "arr" }>, ch: string): R {
    switch (f.ph) {
      case "open":
        if (ch !== "[") return R.Reject;
        f.ph = "first";
        return R.Consumed;
      case "first":
        if (ch === "]" && f.n.minItems === 0) return R.Close;
        if (f.n.maxItems === 0) return R.Reject;
        f.ph = "next";
        this.push({ t: "val", n: f.n.items });
        return R.Restep;
      case "next":
        this.push({ t: "val", n: f.n.items });
        return R.Restep;
      case "after":
        if (ch === "," && f.count < f.n.maxItems) {
          f.ph = "next";
          return R.Consumed;
        }
        return ch === "]" && f.count >= f.n.minItems ? R.Close : R.Reject;
    }
  }

  private stepCall(f: Extract<Frame, { t: "call" }>, _ch: string): R {
    const g = this.grammar;
    if (g.value) {
      // a document: phases 2 (prefix) → 3 (the value) → 4 (suffix) → 5, the empty parts skipped
      if (f.ph === 0) {
        f.ph = g.prefix ? 2 : 3;
        if (g.prefix) this.push({ t: "lit", s: g.prefix, i: 0 });
        return R.Restep;
      }
      if (f.ph === 3) {
        this.push({ t: "val", n: g.value });
        return R.Restep;
      }
      if (f.ph === 4 && g.suffix) {
        this.push({ t: "lit", s: g.suffix, i: 0 });
        return R.Restep;
      }
      return R.Reject;
    }
    switch (f.ph) {
      case 0:
        this.push({ t: "lit", s: `${g.prefix}"api_name":`, i: 0 });
        return R.Restep;
      case 1:
        this.push({ t: "val", n: { k: "str", enum: [...g.tools.keys()], maxLength: Infinity, minLength: 0 } });
        return R.Restep;
      case 2:
        this.push({ t: "lit", s: ',"parameters":', i: 0 });
        return R.Restep;
      case 3:
        this.push({ t: "val", n: g.tools.get(f.tool)! });
        return R.Restep;
      case 4:
        this.push({ t: "lit", s: g.suffix, i: 0 });
        return R.Restep;
      default:
        return R.Reject;
    }
  }
}

/** Whether `s` is a whole number the node accepts (its sign bound included). */
export function numberEnds(s: string, n: NumNode): boolean {
  return NUM.test(s) && !(n.sign === "pos" && /^0(\.0*)?$/.test(s));
}

function canExtendNumber(s: string, ch: string, n: NumNode): boolean {
  const { integer, maxDigits, sign } = n;
  const digit = ch >= "0" && ch <= "9";
  if (s === "") return sign ? digit && !(sign === "pos" && integer && ch === "0") : ch === "-" || digit;
  if (s === "-") return digit;
  const dot = s.indexOf(".");
  if (dot >= 0) {
    const decimals = s.length - dot - 1;
    // a positive number still all zeros must not use its last decimal place on another zero
    if (sign === "pos" && decimals === 5 && ch === "0" && /^0\.0*$/.test(s)) return false;
    return digit && decimals < 6;
  }
  const intDigits = s.replace("-", "");
  if (ch === ".") return !integer;
  // no leading zeros, and a bounded digit count (≤ 15 keeps the value an exact JS number)
  return digit && intDigits !== "0" && intDigits.length < maxDigits;
}
