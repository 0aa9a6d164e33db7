/**
 * llama.cpp's byte-level BPE (GGUF tokenizer.ggml.model = "gpt2"): the text is cut by the pre-tokenizer regexes
 * of `tokenizer.ggml.pre` (each regex splits every piece again, keeping matches and the text between them),
 * each word is spelled in GPT-2 byte characters and merged by rank (leftmost on ties, stale pairs detected by
 * text), and symbols that are not tokens fall back to single-byte tokens.
 */
import { XverseError } from "../errors.js";
import { Heap } from "./heap.js";
import { translateOniguruma } from "./regex.js";
import { BYTE_TO_CHAR } from "./pre-tokenizers.js";

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const CJK = "[一-龥ࠀ-一가-퟿]+";
// Written with escapes: several of these code points (U+1FD3, U+2126, U+212A…) have canonical singleton
// decompositions, and an editor or copy that normalizes text would silently change the ranges.
const DEEPSEEK_LLM_LETTERS =
  "\\s?[A-Za-z\\u{B5}\\u{C0}-\\u{D6}\\u{D8}-\\u{F6}\\u{F8}-\\u{1BA}\\u{1BC}-\\u{1BF}\\u{1C4}-\\u{293}\\u{295}-\\u{2AF}\\u{370}-\\u{373}\\u{376}\\u{377}\\u{37B}-\\u{37D}\\u{37F}\\u{386}\\u{388}-\\u{38A}\\u{38C}\\u{38E}-\\u{3A1}\\u{3A3}-\\u{3F5}\\u{3F7}-\\u{481}\\u{48A}-\\u{52F}\\u{531}-\\u{556}\\u{10A0}-\\u{10C5}\\u{13A0}-\\u{13F5}\\u{13F8}-\\u{13FD}\\u{1C90}-\\u{1CBA}\\u{1CBD}-\\u{1CBF}\\u{1D00}-\\u{1D2B}\\u{1D6B}-\\u{1D77}\\u{1D79}-\\u{1D9A}\\u{1E00}-\\u{1F15}\\u{1F18}-\\u{1F1D}\\u{1F20}-\\u{1F45}\\u{1F48}-\\u{1F4D}\\u{1F50}-\\u{1F57}\\u{1F59}\\u{1F5B}\\u{1F5D}\\u{1F5F}-\\u{1F7D}\\u{1F80}-\\u{1FB4}\\u{1FB6}-\\u{1FBC}\\u{1FBE}\\u{1FC2}-\\u{1FC4}\\u{1FC6}-\\u{1FCC}\\u{1FD0}-\\u{1FD3}\\u{1FD6}-\\u{1FDB}\\u{1FE0}-\\u{1FEC}\\u{1FF2}-\\u{1FF4}\\u{1FF6}-\\u{1FFC}\\u{2102}\\u{2107}\\u{210A}-\\u{2113}\\u{2115}\\u{2119}-\\u{211D}\\u{2124}\\u{2126}\\u{2128}\\u{212A}-\\u{212D}\\u{212F}-\\u{2134}\\u{2139}\\u{213C}-\\u{213F}\\u{2145}-\\u{2149}\\u{214E}\\u{2183}\\u{2184}\\u{2C00}-\\u{2C7B}\\u{2C7E}-\\u{2CE4}\\u{2CEB}-\\u{2CEE}\\u{2CF2}\\u{2CF3}\\u{A640}-\\u{A66D}\\u{A680}-\\u{A69B}\\u{A722}-\\u{A76F}\\u{A771}-\\u{A787}\\u{A78B}-\\u{A78E}\\u{AB70}-\\u{ABBF}\\u{FB00}-\\u{FB06}\\u{FB13}-\\u{FB17}\\u{FF21}-\\u{FF3A}\\u{FF41}-\\u{FF5A}\\u{10400}-\\u{1044F}\\u{104B0}-\\u{104D3}\\u{104D8}-\\u{104FB}\\u{10C80}-\\u{10CB2}\\u{10CC0}-\\u{10CF2}\\u{118A0}-\\u{118DF}\\u{1E900}-\\u{1E943}]+";

/** llama.cpp's regex lists per `tokenizer.ggml.pre` (llama-vocab.cpp), and whether merges may be skipped. */
export function preTokenizerRegexes(pre: string): { regexes: string[]; ignoreMerges: boolean } {
  switch (pre) {
    case "default":
      return { regexes: ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"], ignoreMerges: false };
    case "llama3":
    case "llama-bpe":
    case "llama-v3":
    case "smaug-bpe":
    case "dbrx":
    case "falcon3":
    case "pixtral":
      return { regexes: [LLAMA3], ignoreMerges: true };
    case "deepseek-llm":
      return { regexes: ["[\r\n]", DEEPSEEK_LLM_LETTERS, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", CJK, "\\p{N}+"], ignoreMerges: false };
    case "deepseek-coder":
      return { regexes: ["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK, "\\p{N}"], ignoreMerges: false };
    case "falcon":
      return { regexes: ["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"], ignoreMerges: false };
    case "starcoder":
    case "refact":
    case "command-r":
    case "smollm":
    case "codeshell":
    case "exaone":
    case "minerva-7b":
      return { regexes: ["\\p{N}", GPT2], ignoreMerges: false };
    case "gpt-2":
    case "phi-2":
    case "mpt":
    case "olmo":
    case "jais":
    case "trillion":
      return { regexes: [GPT2], ignoreMerges: false };
    case "qwen2":
    case "stablelm2":
    case "hunyuan":
    case "megrez":
      return { regexes: [QWEN2], ignoreMerges: false };
    case "poro-chat":
    case "bloom":
    case "gpt3-finnish":
      return { regexes: [" ?[^(\\s|.,!?…。，、।۔،)]+"], ignoreMerges: false };
    default:
      throw new XverseError("unsupported", `pre_tokenizer type ${pre} (GGUF tokenizer.ggml.pre) is not supported`);
  }
}

/** Applies the regex list: each regex re-splits every piece; returns piece boundaries as [start, end) pairs. */
export function regexSplit(original: string, res: RegExp[]): number[] {
  if (original.length === 0) return [];
  // llama.cpp matches with std::regex, which only knows ASCII whitespace, so it first turns every other
  // whitespace character into \v: explicit ranges such as deepseek-llm's [　-。] then no longer see U+3000.
  const text = NON_ASCII_SPACE.test(original) ? original.replace(NON_ASCII_SPACE_G, "\v") : original;
  let pieces = [0, text.length];
  for (const re of res) {
    const out: number[] = [];
    for (let i = 0; i < pieces.length; i += 2) {
      const a = pieces[i];
      const b = pieces[i + 1];
      const sub = text.slice(a, b);
      re.lastIndex = 0;
      let prev = 0;
      for (let m = re.exec(sub); m !== null; m = re.exec(sub)) {
        if (m[0].length === 0) {
          re.lastIndex = m.index + 1;
          continue;
        }
        if (m.index > prev) out.push(a + prev, a + m.index);
        out.push(a + m.index, a + m.index + m[0].length);
        prev = m.index + m[0].length;
      }
      if (prev < sub.length) out.push(a + prev, b);
    }
    pieces = out;
  }
  return pieces;
}

const NON_ASCII_SPACE = /[^\x00-\x7f]/u;
const NON_ASCII_SPACE_G = /(?![\x00-\x7f])\p{White_Space}/gu;

export function compileRegexes(list: string[]): RegExp[] {
  return list.map((r) => new RegExp(translateOniguruma(r, false), "gu"));
}

const encoder = new TextEncoder();

/** A word spelled in GPT-2 byte characters, with the source character index of every byte character. */
export function byteLevelWord(word: string): { text: string; src: number[] } {
  let text = "";
  const src: number[] = [];
  for (let i = 0; i < word.length; ) {
    const n = word.codePointAt(i)! > 0xffff ? 2 : 1;
    for (const b of encoder.encode(word.slice(i, i + n))) {
      text += BYTE_TO_CHAR[b];
      src.push(i);
    }
    i += n;
  }
  return { text, src };
}

interface Bigram {
  left: number;
  right: number;
  rank: number;
  text: string;
}

export interface BpeVocab {
  tokenToId: Map<string, number>;
  /** "left\u0000right" → rank */
  ranks: Map<string, number>;
  ignoreMerges: boolean;
}

/** BPE-merges one byte-level word; pushes ids and [start, end) ranges in byte-character positions. */
export function llamaBpeWord(v: BpeVocab, word: string, ids: number[], ranges: number[]): void {
  if (v.ignoreMerges) {
    const id = v.tokenToId.get(word);
    if (id !== undefined) {
      ids.push(id);
      ranges.push(0, word.length);
      return;
    }
  }
  // Byte characters are all in the BMP: one unit per symbol.
  const n = word.length;
  const st: number[] = [];
  const len: number[] = [];
  const prev: number[] = [];
  const next: number[] = [];
  for (let i = 0; i < n; i++) {
    st.push(i);
    len.push(1);
    prev.push(i - 1);
    next.push(i + 1 < n ? i + 1 : -1);
  }
  const text = (i: number): string => word.slice(st[i], st[i] + len[i]);
  const queue = new Heap<Bigram>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left));
  const add = (l: number, r: number): void => {
    if (l === -1 || r === -1) return;
    const lt = text(l);
    const rt = text(r);
    const rank = v.ranks.get(lt + "\u0000" + rt);
    if (rank === undefined) return;
    queue.push({ left: l, right: r, rank, text: lt + rt });
  };
  for (let i = 1; i < n; i++) add(i - 1, i);
  for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
    const l = b.left;
    const r = b.right;
    if (len[l] === 0 || len[r] === 0) continue;
    if (text(l) + text(r) !== b.text) continue;
    len[l] += len[r];
    len[r] = 0;
    next[l] = next[r];
    if (next[r] >= 0) prev[next[r]] = l;
    add(prev[l], l);
    add(l, next[l]);
  }
  for (let i = 0; i !== -1 && n > 0; i = next[i]) {
    const s = text(i);
    const id = v.tokenToId.get(s);
    if (id !== undefined) {
      ids.push(id);
      ranges.push(st[i], st[i] + len[i]);
      continue;
    }
    // Not a token: llama.cpp looks up each byte of the symbol's UTF-8 as a one-byte token (only ASCII can hit).
    for (let k = 0; k < s.length; k++) {
      const one = v.tokenToId.get(s[k]);
      if (one !== undefined && s.charCodeAt(k) < 0x80) {
        ids.push(one);
        ranges.push(st[i] + k, st[i] + k + 1);
      }
    }
  }
}
