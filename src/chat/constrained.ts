/**
 * Constrained decoding for XVERSE tool calls: a logits hook for generate() that, once `<|startofthink|>` is in
 * the output (or from the first token, when forced), lets through only tokens that keep the text a valid prefix
 * of "```JSON\n{"api_name":"<tool>","parameters":{…}}```<|endofthink|>" with the parameters meeting that tool's
 * schema (json-prefix.ts), then only eos. The same machinery constrains a whole reply to one JSON document
 * (constrainedJsonHook: response_format json_object / json_schema). The vocabulary is decoded once per tokenizer into the text each token
 * adds mid-sequence, and kept as a character trie, so one step walks only the branches the recognizer accepts.
 */
import { pushAll } from "../arrays.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { minCompletion } from "./json-budget.js";
import { CallRecognizer, compileSchema, DEFAULT_LIMITS, documentGrammar, type CallGrammar, type Node, type PrefixLimits } from "./json-prefix.js";
import type { JsonSchema } from "./schema.js";
import { normalizeTools, THINK_END, THINK_START, type ToolSpec } from "./tools.js";

export const CALL_PREFIX = "```JSON\n{";
export const CALL_SUFFIX = `}\`\`\`${THINK_END}`;

interface Trie {
  ids: number[];
  next: Map<string, Trie>;
}

interface Vocab {
  /** Text each id adds in the middle of a sequence; null for special, empty or partial-UTF-8 tokens. */
  pieces: (string | null)[];
  trie: Trie;
  /** Ids whose piece contains ">", the only ones that can complete `<|startofthink|>`. */
  closers: number[];
  /** The fewest pieces that spell a text (the budget's price of fixed text). */
  litCost: (s: string) => number;
  /**
   * Tokens that are ordinary string content (no quote, backslash or control character), sorted by length in code
   * points; safeStart[L] is where length L begins. Inside a plain string such a token is allowed by its length
   * alone, so the mask takes whole ranges instead of walking ~100k trie paths.
   */
  safeIds: Int32Array;
  safeStart: Int32Array;
  /** The trie of the other tokens (those still walked inside a string). */
  unsafeTrie: Trie;
  /** The root's ASCII branches: outside strings and literals JSON continues only with ASCII. */
  asciiRoot: [string, Trie][];
}

const isSafeContent = (p: string): boolean => {
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) return false;
  }
  return true;
};

function addToTrie(trie: Trie, piece: string, id: number): void {
  let node = trie;
  for (const ch of piece) {
    let n = node.next.get(ch);
    if (!n) node.next.set(ch, (n = { ids: [], next: new Map() }));
    node = n;
  }
  node.ids.push(id);
}

/**
 * Fewest vocabulary pieces that spell `s`, by dynamic programming over the trie (best[i] = pieces for the text
 * from code point i on); memoized, since the budget asks about the same markers and keys at every step. Text no
 * pieces spell is priced at one per character, the budget's general assumption.
 */
function piecesCost(trie: Trie): (s: string) => number {
  const memo = new Map<string, number>();
  return (s) => {
    const hit = memo.get(s);
    if (hit !== undefined) return hit;
    const cps = [...s];
    const best = new Array<number>(cps.length + 1).fill(Infinity);
    best[cps.length] = 0;
    for (let i = cps.length - 1; i >= 0; i--) {
      let node: Trie | undefined = trie;
      for (let j = i; j < cps.length && (node = node.next.get(cps[j])); j++) {
        if (node.ids.length && best[j + 1] + 1 < best[i]) best[i] = best[j + 1] + 1;
      }
    }
    const v = Number.isFinite(best[0]) ? best[0] : cps.length;
    if (memo.size < 65536) memo.set(s, v);
    return v;
  };
}

const vocabCache = new WeakMap<Tokenizer, Vocab>();

/** The fewest vocabulary pieces that spell `s` on this tokenizer (what the token budget charges for fixed text). */
export function pieceCost(tok: Tokenizer, s: string): number {
  return prepare(tok).litCost(s);
}

/**
 * decode([anchor, id]) minus decode([anchor]) is what `id` adds after other text — the Metaspace decoder drops
 * a leading space only at the very start, and byte-fallback tokens decode in context.
 */
export function vocabPieces(tok: Tokenizer): (string | null)[] {
  const anchor = tok.encode("a", { addSpecialTokens: false }).ids;
  const base = tok.decode(anchor, { skipSpecialTokens: false });
  const pieces: (string | null)[] = new Array(tok.vocabSize).fill(null);
  for (let id = 0; id < tok.vocabSize; id++) {
    if (tok.isSpecial(id) || tok.idToToken(id) === undefined) continue;
    const t = tok.decode([...anchor, id], { skipSpecialTokens: false });
    if (!t.startsWith(base)) continue;
    const piece = t.slice(base.length);
    // a lone byte of a multi-byte character decodes to U+FFFD: such tokens only work in pairs, so leave them out
    if (piece === "" || (piece.includes("\uFFFD") && !tok.idToToken(id)!.includes("\uFFFD"))) continue;
    pieces[id] = piece;
  }
  return pieces;
}

function prepare(tok: Tokenizer): Vocab {
  let v = vocabCache.get(tok);
  if (v) return v;
  const pieces = vocabPieces(tok);
  const trie: Trie = { ids: [], next: new Map() };
  const unsafeTrie: Trie = { ids: [], next: new Map() };
  const closers: number[] = [];
  const safe: [number, number][] = []; // [length in code points, id]
  pieces.forEach((p, id) => {
    if (p === null) return;
    addToTrie(trie, p, id);
    if (isSafeContent(p)) safe.push([[...p].length, id]);
    else addToTrie(unsafeTrie, p, id);
    if (p.includes(">")) closers.push(id);
  });
  safe.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const maxLen = safe.length ? safe[safe.length - 1][0] : 0;
  const safeStart = new Int32Array(maxLen + 2);
  for (let L = 0, i = 0; L <= maxLen + 1; L++) {
    while (i < safe.length && safe[i][0] < L) i++;
    safeStart[L] = i;
  }
  const asciiRoot = [...trie.next].filter(([ch]) => ch.codePointAt(0)! < 0x80);
  v = { pieces, trie, closers, litCost: piecesCost(trie), safeIds: Int32Array.from(safe, (x) => x[1]), safeStart, unsafeTrie, asciiRoot };
  vocabCache.set(tok, v);
  return v;
}

/**
 * allowedIds over the whole vocabulary, with two shortcuts that keep a step cheap at vocab ~100k: inside a plain
 * string, ordinary content tokens are taken by length ranges (only quote / backslash / control tokens are walked);
 * in an enum value or key only the branches of its possible next characters; elsewhere only the trie's ASCII
 * branches can match (JSON syntax, numbers, literals, markers).
 */
function allowedFromRoot(v: Vocab, m: CallRecognizer, out: Allowed, room: number, over: Over): void {
  const str = m.plainString();
  if (str) {
    const below = room === Infinity ? 0 : minCompletion(m) - stringCost(str);
    const maxL = str.n.maxLength - str.len;
    for (let L = 1; L + 1 < v.safeStart.length && L <= maxL; L++) {
      const a = v.safeStart[L], b = v.safeStart[L + 1];
      if (a === b) continue;
      // the same price allowedInString gives: what the string still needs after these L characters
      const cost = room === Infinity ? 0 : below + Math.max(0, str.n.minLength - str.len - L) + 1;
      if (cost <= room) for (let i = a; i < b; i++) out.push(v.safeIds[i]);
      else over.add(v.safeIds.subarray(a, b), cost);
    }
    return allowedInString(v.unsafeTrie, m, str, below, out, room, over);
  }
  const top = m.frames[m.frames.length - 1];
  if (top?.t === "str" && top.open && !top.esc && top.n.enum) {
    // an enum value or object key: only the next character of a value still possible, a quote or an escape
    const next = new Set(['"', "\\"]);
    for (const e of top.n.enum) if (e.length > top.buf.length && e.startsWith(top.buf)) next.add(String.fromCodePoint(e.codePointAt(top.buf.length)!));
    for (const ch of next) {
      const child = v.trie.next.get(ch);
      if (!child) continue;
      const m2 = m.clone();
      if (m2.feed(ch)) emitAndDescend(child, m2, out, room, over);
    }
    return;
  }
  const nonAscii = top?.t === "lits" && top.values.some((x) => /[^\x00-\x7f]/.test(x));
  for (const [ch, child] of nonAscii ? v.trie.next : v.asciiRoot) {
    const m2 = m.clone();
    if (m2.feed(ch)) emitAndDescend(child, m2, out, room, over);
  }
}

/**
 * All ids whose piece the recognizer accepts in full from state `m`; with a token budget, only those after which
 * the call can still be finished in `room` more tokens (those that do not fit go to `over`).
 */
function allowedIds(trie: Trie, m: CallRecognizer, out: Allowed, room: number, over: Over): void {
  const str = m.plainString();
  if (str) {
    // inside a plain string only the string's own remaining cost changes: price everything below it once
    const below = room === Infinity ? 0 : minCompletion(m) - stringCost(str);
    return allowedInString(trie, m, str, below, out, room, over);
  }
  for (const [ch, child] of trie.next) {
    const m2 = m.clone();
    if (m2.feed(ch)) emitAndDescend(child, m2, out, room, over);
  }
}

/** Once the recognizer has taken a trie node's character: its token ids (allowed or over budget), then its children. */
function emitAndDescend(child: Trie, m2: CallRecognizer, out: Allowed, room: number, over: Over): void {
  if (child.ids.length) {
    const cost = room === Infinity ? 0 : minCompletion(m2);
    if (cost <= room) for (const id of child.ids) out.push(id);
    else over.add(child.ids, cost);
  }
  if (child.next.size) allowedIds(child, m2, out, room, over);
}

/**
 * One step's allowed ids as a flag per token id (the hook reuses one buffer; cleared after each mask): at ~100k
 * allowed tokens this costs a typed-array write each, not a growing JS array and a copy.
 */
class Allowed {
  count = 0;
  constructor(readonly flags: Uint8Array) {}
  push(id: number): void {
    if (!this.flags[id]) {
      this.flags[id] = 1;
      this.count++;
    }
  }
}

/**
 * Tokens that keep the text valid but leave too little room to finish: only those whose completion is shortest
 * are kept, so when max_new_tokens is below the shortest call (it will be cut anyway) the decoder still heads
 * straight for the end and the cut call holds as much as it can.
 */
class Over {
  ids: number[] = [];
  cost = Infinity;
  add(ids: ArrayLike<number>, cost: number): void {
    if (cost > this.cost) return;
    if (cost < this.cost) {
      this.cost = cost;
      this.ids = [];
    }
    pushAll(this.ids, ids);
  }
}

type StrFrame = NonNullable<ReturnType<CallRecognizer["plainString"]>>;

/** What a plain string still needs: its missing minimum length and the closing quote. */
function stringCost(f: StrFrame): number {
  return Math.max(0, f.n.minLength - f.len) + 1;
}

/**
 * The trie walk while inside a plain string: ordinary characters append to the live frame (undone on the way
 * back) instead of cloning the recognizer at every node; a quote or backslash falls back to the general walk.
 */
function allowedInString(trie: Trie, m: CallRecognizer, f: StrFrame, below: number, out: Allowed, room: number, over: Over): void {
  for (const [ch, child] of trie.next) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\" || code < 0x20) {
      const m2 = m.clone();
      if (m2.feed(ch)) emitAndDescend(child, m2, out, room, over);
      continue;
    }
    if (f.len >= f.n.maxLength) continue;
    const buf = f.buf;
    f.buf += ch;
    f.len++;
    if (child.ids.length) {
      const cost = room === Infinity ? 0 : below + stringCost(f);
      if (cost <= room) for (const id of child.ids) out.push(id);
      else over.add(child.ids, cost);
    }
    if (child.next.size) allowedInString(child, m, f, below, out, room, over);
    f.buf = buf;
    f.len--;
  }
}

export interface ConstrainedHookOptions {
  /** Start the call at the first generated token (the model must call a tool). Default false: wait for the marker. */
  force?: boolean;
  /** Ids allowed (and the only ones allowed) once the end marker is written. Default: the tokenizer's eos. */
  eosTokenIds?: number[];
  limits?: Partial<PrefixLimits>;
  /**
   * The generation's max_new_tokens: the call is steered to close within it (each token is allowed only if the
   * shortest way to finish still fits). Default: no budget.
   */
  maxNewTokens?: number;
}

export interface ConstrainedHook {
  (ids: readonly number[], logits: Float32Array): void;
  /** Forget the previous generation: call before reusing the hook for another generate(). */
  reset(): void;
  /** "free" (before the marker), "call" (inside), "done" (end marker written), "stuck" (no token fits; unconstrained). */
  readonly state: "free" | "call" | "done" | "stuck";
}

/**
 * A logitsHook for generate(). Use one hook per generation (or call reset()); the first call it sees marks where
 * the prompt ends.
 */
export function constrainedToolCallHook(tok: Tokenizer, tools: readonly ToolSpec[] | unknown, opts: ConstrainedHookOptions = {}): ConstrainedHook {
  const specs: ToolSpec[] = Array.isArray(tools) && tools.every((t) => t && typeof t === "object" && "schema" in t && "plugin" in t)
    ? (tools as ToolSpec[])
    : normalizeTools(tools);
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const grammar: CallGrammar = {
    prefix: (opts.force ? THINK_START : "") + CALL_PREFIX,
    suffix: CALL_SUFFIX,
    tools: new Map(specs.map((t) => [t.name, compileSchema(t.schema, limits)])),
  };
  return grammarHook(tok, grammar, opts);
}

/**
 * Bounds for a JSON reply (response_format): looser than a tool call's, since the reply is the point; the token
 * budget (maxNewTokens) is what makes even a random model close the document in time.
 */
export const JSON_LIMITS: PrefixLimits = { maxStringLength: 512, maxItems: 64, maxFreeProperties: 16, maxDepth: 8, maxNumberDigits: 15 };

/**
 * A logitsHook that makes the whole reply one compact JSON document, then eos: with a schema, a value the schema
 * accepts (schema-check.ts says which schemas are supported); with null, any JSON object (json_object mode).
 * The same recognizer, vocabulary trie and budget as tool calls, on a grammar with no call wrapper.
 */
export function constrainedJsonHook(tok: Tokenizer, schema: JsonSchema | null, opts: Omit<ConstrainedHookOptions, "force"> = {}): ConstrainedHook {
  const limits = { ...JSON_LIMITS, ...opts.limits };
  const node: Node = schema ? compileSchema(schema, limits)
    : { k: "obj", props: null, required: [], maxProps: limits.maxFreeProperties, free: { k: "any", maxLength: limits.maxStringLength, maxDigits: limits.maxNumberDigits } };
  return grammarHook(tok, documentGrammar(node), { ...opts, force: true });
}

/** The hook over any grammar: forced grammars start at the first generated token, others at `<|startofthink|>`. */
function grammarHook(tok: Tokenizer, g: CallGrammar, opts: ConstrainedHookOptions): ConstrainedHook {
  const vocab = prepare(tok);
  const grammar: CallGrammar = { ...g, litCost: g.litCost ?? vocab.litCost };
  const eos = opts.eosTokenIds ?? (tok.eosId !== null ? [tok.eosId] : []);

  let seen = -1;
  let promptLength = 0;
  let mode: ConstrainedHook["state"] = "free";
  let text = "";
  let m: CallRecognizer | null = null;

  const reset = (): void => {
    seen = -1;
    text = "";
    mode = opts.force ? "call" : "free";
    m = opts.force ? CallRecognizer.start(grammar) : null;
  };
  reset();

  const enterCall = (rest: string): boolean => {
    const r = CallRecognizer.start(grammar);
    if (!r.feedText(rest)) return false;
    m = r;
    mode = r.complete ? "done" : "call";
    return true;
  };

  const advance = (id: number): void => {
    const piece = vocab.pieces[id] ?? "";
    if (mode === "free") {
      const from = Math.max(0, text.length - THINK_START.length + 1);
      text += piece;
      const at = text.indexOf(THINK_START, from);
      if (at >= 0 && !enterCall(text.slice(at + THINK_START.length))) mode = "stuck";
    } else if (mode === "call") {
      if (!m!.feedText(piece)) mode = "stuck";
      else if (m!.complete) mode = "done";
    }
  };

  const mask = (logits: Float32Array, allowed: number[]): void => {
    if (!allowed.length) {
      // nothing fits (e.g. a character the vocabulary only has as byte pieces): stop constraining
      mode = "stuck";
      return;
    }
    const keep = new Float32Array(allowed.length);
    allowed.forEach((id, i) => (keep[i] = id < logits.length ? logits[id] : -Infinity));
    logits.fill(-Infinity);
    allowed.forEach((id, i) => id < logits.length && (logits[id] = keep[i]));
  };

  const flags = new Uint8Array(tok.vocabSize);
  /** Keeps only the flagged logits and clears the flags for the next step. */
  const maskFlags = (logits: Float32Array, a: Allowed): void => {
    const n = Math.min(logits.length, a.flags.length);
    for (let i = 0; i < n; i++) if (!a.flags[i]) logits[i] = -Infinity;
    for (let i = n; i < logits.length; i++) logits[i] = -Infinity;
    a.flags.fill(0);
  };

  const hook = ((ids: readonly number[], logits: Float32Array): void => {
    if (seen < 0 || ids.length < seen) {
      seen = ids.length;
      promptLength = ids.length;
    }
    for (; seen < ids.length; seen++) advance(ids[seen]);
    if (mode === "done") {
      if (eos.length) mask(logits, eos);
    } else if (mode === "call") {
      const allowed = new Allowed(flags);
      const over = new Over();
      // tokens left after this one
      const room = opts.maxNewTokens === undefined ? Infinity : opts.maxNewTokens - (ids.length - promptLength) - 1;
      allowedFromRoot(vocab, m!, allowed, room, over);
      // out of room already (max_new_tokens below the shortest call): still write a valid prefix
      if (allowed.count) maskFlags(logits, allowed);
      else mask(logits, over.ids);
    } else if (mode === "free") {
      // tokens that would complete the start marker must also begin a valid call
      const tail = text.slice(Math.max(0, text.length - THINK_START.length + 1));
      for (const id of vocab.closers) {
        const s = tail + vocab.pieces[id]!;
        const at = s.indexOf(THINK_START);
        if (at < 0) continue;
        if (!CallRecognizer.start(grammar).feedText(s.slice(at + THINK_START.length)) && id < logits.length) logits[id] = -Infinity;
      }
    }
  }) as ConstrainedHook;
  hook.reset = reset;
  Object.defineProperty(hook, "state", { get: () => mode });
  return hook;
}
