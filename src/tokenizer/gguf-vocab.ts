/**
 * A tokenizer from a GGUF file's `tokenizer.ggml.*` metadata, tokenizing the way llama.cpp does:
 * special / user-defined tokens are split out first (longest first), then "llama" vocabularies use the
 * SentencePiece-style merge by score (llama-spm.ts) and "gpt2" vocabularies byte-level BPE after the regexes of
 * `tokenizer.ggml.pre` (llama-bpe.ts).
 */
import { XverseError } from "../errors.js";
import { CHAR_TO_BYTE } from "./pre-tokenizers.js";
import { byteLevelWord, compileRegexes, llamaBpeWord, preTokenizerRegexes, regexSplit, type BpeVocab } from "./llama-bpe.js";
import { spmTokenize, type SpmVocab } from "./llama-spm.js";
import { createStreamDecoder } from "./stream.js";
import { toCodePointOffsets } from "./tokenizer.js";
import type { DecodeOptions, EncodeOptions, Encoding, StreamDecodeOptions, StreamDecoder, Tokenizer } from "./types.js";

/** GGUF token types (llama.cpp's llama_token_type). */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface GgufEncodeOptions extends EncodeOptions {
  /** Recognise control tokens written in the text (llama.cpp parse_special). Default true. */
  parseSpecial?: boolean;
}

type Meta = Record<string, unknown>;

/** C isspace(): what llama.cpp's lstrip / rstrip remove. */
const C_SPACE = /^[ \t\n\v\f\r]$/;

const EOG_TEXTS = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>", "</s>"];

function get<T>(m: Meta, key: string, check: (v: unknown) => boolean, what: string): T | undefined {
  const v = m[key];
  if (v === undefined) return undefined;
  if (!check(v)) throw new XverseError("bad_gguf", `GGUF metadata ${key} should be ${what}`);
  return v as T;
}

const isNum = (v: unknown): boolean => typeof v === "number" || typeof v === "bigint";
const num = (v: unknown): number | null => (v === undefined || v === null ? null : Number(v));

export function tokenizerFromGguf(metadata: Meta): GgufTokenizer {
  const model = get<string>(metadata, "tokenizer.ggml.model", (v) => typeof v === "string", "a string");
  if (model === undefined) throw new XverseError("bad_gguf", "GGUF file has no tokenizer.ggml.model; it carries no tokenizer");
  if (model !== "llama" && model !== "gpt2") throw new XverseError("unsupported", `model type ${model} (GGUF tokenizer.ggml.model) is not supported; expected "llama" or "gpt2"`);
  const tokens = get<string[]>(metadata, "tokenizer.ggml.tokens", Array.isArray, "an array of strings");
  if (!tokens || tokens.length === 0) throw new XverseError("bad_gguf", "GGUF metadata tokenizer.ggml.tokens is missing or empty");
  return new GgufTokenizer(model, metadata, tokens);
}

export class GgufTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  private readonly tokens: string[];
  private readonly types: number[];
  private readonly tokenToIdMap = new Map<string, number>();
  private readonly specials: number[];
  private readonly lstrip = new Set<number>();
  private readonly rstrip = new Set<number>();
  private readonly addBos: boolean;
  private readonly addEos: boolean;
  private readonly addSpacePrefix: boolean;
  /** llama.cpp's clean_spaces: decode removes the space before ? ! . , and before 's 'm 'll 're 've. */
  readonly cleanSpaces: boolean;
  private readonly spm: SpmVocab | null = null;
  private readonly bpe: BpeVocab | null = null;
  private readonly regexes: RegExp[] = [];

  constructor(readonly model: "llama" | "gpt2", m: Meta, tokens: string[]) {
    this.tokens = tokens.map(String);
    this.vocabSize = tokens.length;
    const types = get<number[]>(m, "tokenizer.ggml.token_type", Array.isArray, "an array of integers");
    this.types = types ? types.map(Number) : new Array(tokens.length).fill(TokenType.NORMAL);
    this.tokens.forEach((t, i) => this.tokenToIdMap.set(t, i));
    // llama.cpp retypes end-of-generation tokens as control tokens when a file marks them otherwise (phi-3's
    // "</s>" is user-defined), so they are only recognised in text with parse_special.
    for (const name of EOG_TEXTS) {
      const id = this.tokenToIdMap.get(name);
      if (id !== undefined && this.types[id] !== TokenType.CONTROL) this.types[id] = TokenType.CONTROL;
    }
    this.bosId = num(m["tokenizer.ggml.bos_token_id"]);
    this.eosId = num(m["tokenizer.ggml.eos_token_id"]);
    this.padId = num(m["tokenizer.ggml.padding_token_id"]);
    const spm = model === "llama";
    this.addBos = (get<boolean>(m, "tokenizer.ggml.add_bos_token", (v) => typeof v === "boolean", "a boolean") ?? spm) && this.bosId !== null;
    this.addEos = (get<boolean>(m, "tokenizer.ggml.add_eos_token", (v) => typeof v === "boolean", "a boolean") ?? false) && this.eosId !== null;
    this.addSpacePrefix = get<boolean>(m, "tokenizer.ggml.add_space_prefix", (v) => typeof v === "boolean", "a boolean") ?? spm;
    // Tokens split out of the raw text before the model runs, longest first (llama.cpp cache_special_tokens).
    this.specials = [];
    this.types.forEach((t, i) => {
      if ((t === TokenType.CONTROL || t === TokenType.USER_DEFINED || t === TokenType.UNKNOWN) && this.tokens[i].length > 0) this.specials.push(i);
    });
    this.specials.sort((a, b) => utf8Length(this.tokens[b]) - utf8Length(this.tokens[a]) || a - b);
    // llama.cpp's per-model token attributes (llama-vocab.cpp): phi-3's special tokens eat the whitespace
    // after them, except <unk>, <s> and <|endoftext|>.
    const modelName = String(m["general.name"] ?? "").toLowerCase();
    if (modelName.includes("phi-3") || modelName.includes("phi3")) {
      for (const id of this.specials) this.rstrip.add(id);
      const eos = this.tokenToIdMap.get("</s>");
      if (eos !== undefined) this.rstrip.add(eos);
      for (const name of ["<unk>", "<s>", "<|endoftext|>"]) {
        const id = this.tokenToIdMap.get(name);
        if (id !== undefined) this.rstrip.delete(id);
      }
    }
    this.cleanSpaces = false;
    if (spm) {
      const scores = get<number[]>(m, "tokenizer.ggml.scores", Array.isArray, "an array of numbers");
      const byteIds = new Int32Array(256).fill(-1);
      for (let b = 0; b < 256; b++) {
        const id = this.tokenToIdMap.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
        if (id !== undefined) byteIds[b] = id;
      }
      this.spm = { tokenToId: this.tokenToIdMap, scores: scores ? Float32Array.from(scores.map(Number)) : new Float32Array(tokens.length), byteIds, nTokens: tokens.length };
    } else {
      const merges = get<string[]>(m, "tokenizer.ggml.merges", Array.isArray, "an array of strings") ?? [];
      const ranks = new Map<string, number>();
      merges.forEach((mg, r) => {
        // llama.cpp splits at the first space after the first character (a token may start with a space).
        const k = String(mg).indexOf(" ", 1);
        if (k < 0) throw new XverseError("bad_gguf", `GGUF merge ${r} (${JSON.stringify(mg)}) has no space between its two parts`);
        const key = mg.slice(0, k) + "\u0000" + mg.slice(k + 1);
        if (!ranks.has(key)) ranks.set(key, r);
      });
      const pre = get<string>(m, "tokenizer.ggml.pre", (v) => typeof v === "string", "a string") ?? "default";
      const { regexes, ignoreMerges } = preTokenizerRegexes(pre);
      this.regexes = compileRegexes(regexes);
      this.cleanSpaces = !NO_CLEAN_SPACES.has(pre);
      this.bpe = { tokenToId: this.tokenToIdMap, ranks, ignoreMerges };
    }
  }

  encode(text: string, options?: GgufEncodeOptions): Encoding {
    const parseSpecial = options?.parseSpecial ?? true;
    const addSpecial = options?.addSpecialTokens ?? true;
    const ids: number[] = [];
    const offsets: [number, number][] = [];
    if (addSpecial && this.addBos) {
      ids.push(this.bosId!);
      offsets.push([0, 0]);
    }
    let prevSpecial = true;
    for (const f of this.partition(text, parseSpecial)) {
      if (f.id >= 0) {
        ids.push(f.id);
        offsets.push([f.start, f.end]);
        prevSpecial = true;
        continue;
      }
      const frag = text.slice(f.start, f.end);
      const r: number[] = [];
      if (this.spm) {
        const pre = this.addSpacePrefix && prevSpecial ? 1 : 0;
        spmTokenize(this.spm, ((pre ? " " : "") + frag).replaceAll(" ", "\u2581"), ids, r);
        for (let k = 0; k < r.length; k += 2) {
          offsets.push([f.start + Math.max(0, r[k] - pre), f.start + Math.max(0, r[k + 1] - pre)]);
        }
      } else {
        const cuts = regexSplit(frag, this.regexes);
        for (let c = 0; c < cuts.length; c += 2) {
          const piece = frag.slice(cuts[c], cuts[c + 1]);
          const { text: w, src } = byteLevelWord(piece);
          r.length = 0;
          llamaBpeWord(this.bpe!, w, ids, r);
          for (let k = 0; k < r.length; k += 2) {
            const a = src[r[k]];
            const last = src[r[k + 1] - 1];
            const endCh = last + (piece.codePointAt(last)! > 0xffff ? 2 : 1);
            offsets.push([f.start + cuts[c] + a, f.start + cuts[c] + endCh]);
          }
        }
      }
      prevSpecial = false;
    }
    if (addSpecial && this.addEos) {
      ids.push(this.eosId!);
      offsets.push([text.length, text.length]);
    }
    if (/[\ud800-\udfff]/.test(text)) toCodePointOffsets(text, offsets);
    return { ids, tokens: ids.map((id) => this.tokens[id]), offsets };
  }

  /** llama.cpp tokenizer_st_partition: raw-text fragments and special-token fragments, in order. */
  private partition(text: string, parseSpecial: boolean): { id: number; start: number; end: number }[] {
    let frags: { id: number; start: number; end: number }[] = text.length > 0 ? [{ id: -1, start: 0, end: text.length }] : [];
    for (const sid of this.specials) {
      const type = this.types[sid];
      if (!parseSpecial && (type === TokenType.CONTROL || type === TokenType.UNKNOWN)) continue;
      const content = this.tokens[sid];
      if (!frags.some((f) => f.id < 0 && f.end - f.start >= content.length)) continue;
      const next: typeof frags = [];
      for (const f of frags) {
        if (f.id >= 0) {
          next.push(f);
          continue;
        }
        let pos = f.start;
        for (;;) {
          const k = text.indexOf(content, pos);
          if (k < 0 || k + content.length > f.end) break;
          let left = k;
          if (this.lstrip.has(sid)) while (left > pos && C_SPACE.test(text[left - 1])) left--;
          if (left > pos) next.push({ id: -1, start: pos, end: left });
          next.push({ id: sid, start: k, end: k + content.length });
          pos = k + content.length;
          if (this.rstrip.has(sid)) while (pos < f.end && C_SPACE.test(text[pos])) pos++;
        }
        if (pos < f.end) next.push({ id: -1, start: pos, end: f.end });
      }
      frags = next;
    }
    return frags;
  }

  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    const text = this.decodeRaw(ids, options);
    return this.cleanSpaces ? cleanSpaces(text) : text;
  }

  /** decode without clean_spaces (streaming uses it: a space already emitted cannot be taken back). */
  private decodeRaw(ids: ArrayLike<number>, options?: DecodeOptions): string {
    const skip = options?.skipSpecialTokens ?? false;
    const bytes: number[] = [];
    const enc = new TextEncoder();
    let first = true;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const t = this.tokens[id];
      if (t === undefined) continue;
      const type = this.types[id];
      if (type === TokenType.CONTROL || type === TokenType.UNKNOWN) {
        if (!skip) for (const b of enc.encode(t)) bytes.push(b);
        // llama.cpp only drops the space prefix from the very first token of the list
        first = false;
        continue;
      }
      if (type === TokenType.BYTE && /^<0x[0-9A-Fa-f]{2}>$/.test(t)) {
        bytes.push(parseInt(t.slice(3, 5), 16));
      } else if (type === TokenType.USER_DEFINED) {
        for (const b of enc.encode(t)) bytes.push(b);
      } else if (this.model === "llama") {
        let s = t.replaceAll("\u2581", " ");
        // the space prefix added at encode time comes off the first text token
        if (first && this.addSpacePrefix && s.startsWith(" ")) s = s.slice(1);
        for (const b of enc.encode(s)) bytes.push(b);
      } else {
        for (const ch of t) {
          const b = CHAR_TO_BYTE.get(ch);
          if (b !== undefined) bytes.push(b);
          else for (const x of enc.encode(ch)) bytes.push(x);
        }
      }
      first = false;
    }
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(Uint8Array.from(bytes));
  }

  idToToken(id: number): string | undefined {
    return this.tokens[id];
  }

  tokenToId(token: string): number | undefined {
    return this.tokenToIdMap.get(token);
  }

  isSpecial(id: number): boolean {
    const t = this.types[id];
    return t === TokenType.CONTROL || t === TokenType.UNKNOWN;
  }

  streamDecoder(options?: StreamDecodeOptions): StreamDecoder {
    const skip = options?.skipSpecialTokens ?? false;
    return createStreamDecoder((ids) => this.decodeRaw(ids), (id) => skip && this.isSpecial(id), options?.context);
  }
}

/** Pre-tokenizer types for which llama.cpp turns clean_spaces off (llama-vocab.cpp). */
const NO_CLEAN_SPACES = new Set(["deepseek-llm", "deepseek-coder", "deepseek-v3", "command-r", "qwen2", "qwen35", "stablelm2", "poro-chat", "chatglm-bpe", "viking", "tekken", "smollm", "chameleon", "gpt-4o", "superbpe", "trillion", "bailingmoe", "megrez", "hunyuan", "kimi-k2"]);

/** llama.cpp's three clean-up passes, in order. */
function cleanSpaces(t: string): string {
  return t
    .replace(/ ([?!.,])/g, "$1")
    .replace(/ ' /g, "'")
    .replace(/ '(?=s|m|ll|re|ve)/g, "'");
}

/** UTF-8 byte length, counted (no Buffer: this also runs in browsers; lone surrogates count 3, as U+FFFD). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else n += 3;
  }
  return n;
}
