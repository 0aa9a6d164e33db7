/**
 * Seeded random strings for differential tests and the benchmark: multilingual text, whitespace runs, digits,
 * punctuation, emoji, rare CJK, combining marks, special tokens — mixed at random.
 */
import { readFileSync } from "node:fs";
import { fixture } from "../helpers/peers.js";
import { rng } from "../helpers/rng.js";

export { rng };

const WORDS = [
  "Hello", "world", "the", "tokenizer", "XVERSE", "model", "über", "straße", "naïve", "café", "Ελληνικά",
  "русский", "язык", "你好", "世界", "中华人民共和国", "模型", "日本語", "こんにちは", "カタカナ", "한국어", "안녕하세요",
  "español", "niño", "français", "déjà", "العربية", "עברית", "हिन्दी", "ไทย", "Tiếng Việt", "function", "return",
  "const x = 1;", "if (a < b) { b++; }", "def f(x):", "n\tif", "nYou", "▁", "▁▁", "<0x41>", "ﬁ", "①", "Ａ", "ｶﾞ",
  "e\u0301", "\u00e9", "\u1100\u1161\u11a8", "ß", "İ", "ǅ", "Ω", "ℌ",
];
const SPECIALS = ["<sep>", "<pad>", "<|startoftext|>", "<|endoftext|>", "<|endofprompt|>", "<|endofknowledge|>", "<s>", "</s>", "<unk>", "<|endofthink|>"];
const PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~，。！？；：「」『』（）《》、…—·¡¿«»“”‘’";
const SPACES = [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \t ", "\u3000", "\u00a0", "\u2009", "\u200b", "\ufeff", "\u0085"];
const EMOJI = ["🤗", "😀", "👍🏽", "👨‍👩‍👧", "🇨🇳", "❤️", "🎉", "🦙", "✅", "⭐"];

let corpus: string[] | null = null;
/** The golden strings plus eval data lines: real multilingual text. */
export function corpusLines(): string[] {
  if (corpus) return corpus;
  const golden = JSON.parse(readFileSync(fixture("golden", "tokenizer-xverse-style", "strings.json"), "utf8")) as unknown;
  const lines: string[] = Array.isArray(golden) ? golden.map(String) : Object.values(golden as object).map(String);
  for (const f of ["ceval/logic_val.csv", "cmmlu/computer_science_test.csv", "mmlu/global_facts_test.csv", "gsm8k/gsm8k_test_first300.jsonl"]) {
    try {
      lines.push(...readFileSync(fixture("eval", f), "utf8").split("\n").filter((l) => l.length > 0));
    } catch {
      // optional extra text
    }
  }
  corpus = lines.filter((l) => !/[\ud800-\udfff]/.test(l.replace(/[\ud800-\udbff][\udc00-\udfff]/g, "")));
  return corpus;
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

function randomChar(r: () => number): string {
  const k = r();
  let cp: number;
  if (k < 0.3) cp = 0x20 + Math.floor(r() * 0x5f);
  else if (k < 0.45) cp = 0x4e00 + Math.floor(r() * 0x5200); // CJK
  else if (k < 0.55) cp = 0x20000 + Math.floor(r() * 0xa6df); // rare CJK, astral
  else if (k < 0.65) cp = 0xa0 + Math.floor(r() * 0x2000);
  else if (k < 0.75) cp = 0x300 + Math.floor(r() * 0x70); // combining marks
  else if (k < 0.8) cp = Math.floor(r() * 0x20); // controls
  else if (k < 0.9) cp = 0x1f300 + Math.floor(r() * 0x300); // emoji
  else cp = 0x2000 + Math.floor(r() * 0xd000);
  if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
  return String.fromCodePoint(cp);
}

/** One random string (0 to ~60 fragments). */
export function randomString(r: () => number, specials = SPECIALS): string {
  const n = Math.floor(r() * r() * 40);
  let s = "";
  for (let i = 0; i < n; i++) {
    const k = r();
    if (k < 0.2) s += pick(r, WORDS);
    else if (k < 0.35) s += pick(r, SPACES).repeat(1 + Math.floor(r() * r() * 4));
    else if (k < 0.45) s += String(Math.floor(r() * 1e6)).slice(0, 1 + Math.floor(r() * 6));
    else if (k < 0.55) s += PUNCT[Math.floor(r() * PUNCT.length)];
    else if (k < 0.62) s += pick(r, EMOJI);
    else if (k < 0.67) s += pick(r, specials);
    else if (k < 0.82) {
      const line = pick(r, corpusLines());
      const a = Math.floor(r() * line.length);
      s += safeSlice(line, a, a + 1 + Math.floor(r() * 30));
    } else s += randomChar(r);
  }
  return s;
}

/** A slice that does not cut a surrogate pair. */
function safeSlice(s: string, a: number, b: number): string {
  if (a > 0 && a < s.length && /[\udc00-\udfff]/.test(s[a])) a++;
  if (b < s.length && /[\udc00-\udfff]/.test(s[b])) b++;
  return s.slice(a, b);
}
