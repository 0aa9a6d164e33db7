/**
 * Structural check of a tokenizer.json before anything is built from it: each field the builders read has the
 * JSON type they expect, or the error names the field (`post_processor.single[2].SpecialToken.id`) and what it
 * should be. Without it a hand-edited or truncated-then-repaired file fails deep inside a builder with a TypeError
 * ("Cannot read properties of null") that names nothing. Semantics (unknown types, bad regexes) stay with the
 * builders, which already say what is wrong.
 */
import { XverseError } from "../errors.js";

type Json = Record<string, unknown>;

const kind = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`;

function bad(path: string, want: string, v: unknown): never {
  throw new XverseError("bad_tokenizer", `field ${path} must be ${want}, got ${kind(v)}; the file is not a valid Hugging Face tokenizer.json (re-download or re-export it)`);
}

const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

function obj(v: unknown, path: string): Json {
  if (!isObj(v)) bad(path, "an object", v);
  return v as Json;
}

/** Optional field (absent or null is fine) of a given JSON type. */
function opt(o: Json, key: string, path: string, type: "string" | "boolean" | "number" | "object" | "array"): void {
  const v = o[key];
  if (v === undefined || v === null) return;
  const ok = type === "array" ? Array.isArray(v) : type === "object" ? isObj(v) : typeof v === type;
  if (!ok) bad(`${path}.${key}`, type === "array" ? "an array" : type === "object" ? "an object" : `a ${type}`, v);
}

function list(o: Json, key: string, path: string): unknown[] {
  opt(o, key, path, "array");
  return (o[key] ?? []) as unknown[];
}

function pattern(o: Json, path: string): void {
  if (o.pattern === undefined) return; // the builder says the pattern is missing
  const p = obj(o.pattern, `${path}.pattern`);
  opt(p, "String", `${path}.pattern`, "string");
  opt(p, "Regex", `${path}.pattern`, "string");
}

/** One component (normalizer / pre_tokenizer / decoder / post_processor) and, for Sequence, its steps. */
function component(v: unknown, path: string, stepsKey: string, extra?: (o: Json, path: string) => void): void {
  if (v === undefined || v === null) return;
  const o = obj(v, path);
  opt(o, "type", path, "string");
  for (const k of ["replacement", "content", "prepend", "prefix", "suffix", "delimiter", "prepend_scheme", "behavior"]) opt(o, k, path, "string");
  pattern(o, path);
  if (o.type === "Sequence") {
    list(o, stepsKey, path).forEach((s, i) => component(obj(s, `${path}.${stepsKey}[${i}]`), `${path}.${stepsKey}[${i}]`, stepsKey, extra));
  }
  extra?.(o, path);
}

function template(o: Json, path: string): void {
  if (o.type === "BertProcessing" || o.type === "RobertaProcessing") {
    for (const k of ["sep", "cls"]) {
      const pair = o[k];
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string" || !Number.isInteger(pair[1])) bad(`${path}.${k}`, '["token", id]', pair);
    }
  }
  if (o.type !== "TemplateProcessing") return;
  for (const key of ["single", "pair"]) {
    list(o, key, path).forEach((item, i) => {
      const p = `${path}.${key}[${i}]`;
      const it = obj(item, p);
      if (it.SpecialToken !== undefined) {
        const s = obj(it.SpecialToken, `${p}.SpecialToken`);
        if (typeof s.id !== "string") bad(`${p}.SpecialToken.id`, "a string", s.id);
      } else if (it.Sequence !== undefined) {
        const s = obj(it.Sequence, `${p}.Sequence`);
        if (typeof s.id !== "string") bad(`${p}.Sequence.id`, 'a string ("A" or "B")', s.id);
      } else bad(p, 'an object with "SpecialToken" or "Sequence"', item);
    });
  }
  if (o.special_tokens === undefined || o.special_tokens === null) return;
  const specials = obj(o.special_tokens, `${path}.special_tokens`);
  for (const [name, sp] of Object.entries(specials)) {
    const p = `${path}.special_tokens[${JSON.stringify(name)}]`;
    const s = obj(sp, p);
    const ids = s.ids, tokens = s.tokens;
    if (!Array.isArray(ids) || !ids.every((x) => Number.isInteger(x) && x >= 0)) bad(`${p}.ids`, "an array of token ids", ids);
    if (!Array.isArray(tokens) || !tokens.every((x) => typeof x === "string")) bad(`${p}.tokens`, "an array of strings", tokens);
    if (tokens.length !== ids.length) bad(`${p}.tokens`, `as long as ids (${ids.length})`, tokens);
  }
}

export function checkTokenizerShape(j: unknown): void {
  const root = obj(j, "(top level)");
  const m = obj(root.model, "model");
  opt(m, "type", "model", "string");
  // other model types (Unigram: vocab is a list) are refused by name in load.ts; check what BPE reads
  if (m.type === undefined || m.type === "BPE") checkBpe(m);
  list(root, "added_tokens", "(top level)").forEach((t, i) => {
    const p = `added_tokens[${i}]`;
    const a = obj(t, p);
    if (!Number.isInteger(a.id) || (a.id as number) < 0) bad(`${p}.id`, "a token id (integer ≥ 0)", a.id);
    if (typeof a.content !== "string") bad(`${p}.content`, "a string", a.content);
  });
  component(root.normalizer, "normalizer", "normalizers");
  component(root.pre_tokenizer, "pre_tokenizer", "pretokenizers");
  component(root.decoder, "decoder", "decoders");
  component(root.post_processor, "post_processor", "processors", template);
}

function checkBpe(m: Json): void {
  opt(m, "vocab", "model", "object");
  for (const [tok, id] of Object.entries((m.vocab ?? {}) as Json)) {
    if (!Number.isInteger(id) || (id as number) < 0) bad(`model.vocab[${JSON.stringify(tok).slice(0, 40)}]`, "a token id (integer ≥ 0)", id);
  }
  list(m, "merges", "model");
  for (const k of ["unk_token", "continuing_subword_prefix", "end_of_word_suffix"]) opt(m, k, "model", "string");
}
