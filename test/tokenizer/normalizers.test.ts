/**
 * Normalizer alignments against the Rust library: a probe tokenizer (normalizer → one piece per character →
 * byte tokens) reports, for every normalized character, the span of the input it aligns to. Random strings full
 * of combining marks, compatibility characters, Hangul jamo and half-width kana.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { requirePeer } from "../helpers/peers.js";
import { rng } from "./random-text.js";

const dir = mkdtempSync(join(tmpdir(), "xverse-norm-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const vocab: Record<string, number> = {};
for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = b;

function probe(normalizer: unknown, name: string): string {
  const j = {
    version: "1.0", added_tokens: [], normalizer, post_processor: null, decoder: null,
    pre_tokenizer: { type: "Split", pattern: { Regex: "[\\s\\S]" }, behavior: "Isolated", invert: false },
    model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: true, ignore_merges: false, vocab, merges: [] },
  };
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(j));
  return file;
}

const PIECES = [
  "e", "a", "A", "o", "u", "x", " ", "ß", "ǅ", "ﬁ", "ﬃ", "①", "½", "Ａ", "ｶ", "ﾞ", "ﾟ", "ﾊ", "가", "\u1100", "\u1161", "\u11a8",
  "\u0301", "\u0300", "\u0302", "\u0308", "\u0316", "\u0323", "\u0327", "\u0345", "\u0358", "\u0611", "\u05b0", "\u0e49",
  "é", "ế", "Å", "Å", "ᾳ", "ΐ", "İ", "Σ", "ς", "ǰ", "㍿", "™", "…", "ｱ", "𝐀", "🤗", "\u3099", "か", "\u0f73", "\u0f71",
];

function randomText(r: () => number): string {
  let s = "";
  const n = 1 + Math.floor(r() * 10);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)];
  return s;
}

for (const [name, normalizer] of [
  ["NFKC", { type: "NFKC" }],
  ["NFC", { type: "NFC" }],
  ["NFD", { type: "NFD" }],
  ["NFKD", { type: "NFKD" }],
  ["Lowercase+NFKC", { type: "Sequence", normalizers: [{ type: "Lowercase" }, { type: "NFKC" }] }],
  ["Replace+Strip+Prepend", { type: "Sequence", normalizers: [{ type: "Strip", strip_left: true, strip_right: true }, { type: "Replace", pattern: { String: "ﬁ" }, content: "fi!" }, { type: "Replace", pattern: { Regex: "e\\u0301+" }, content: "E" }, { type: "Prepend", prepend: "▁" }] }],
] as const) {
  test(`${name}: normalized text and per-character alignments equal the Rust library's (3000 strings)`, async () => {
    const file = probe(normalizer, name.replace(/\W/g, "_"));
    const { Tokenizer } = requirePeer("tokenizers");
    const rust = Tokenizer.fromFile(file);
    const ours = loadTokenizer(file);
    const r = rng(name.length * 7919);
    const texts = Array.from({ length: 3000 }, () => randomText(r));
    const encs = await rust.encodeBatch(texts, { addSpecialTokens: false });
    const bad: string[] = [];
    texts.forEach((t, i) => {
      const e = ours.encode(t, { addSpecialTokens: false });
      const want = JSON.stringify([encs[i].getIds(), encs[i].getOffsets()]);
      const got = JSON.stringify([e.ids, e.offsets]);
      if (want !== got) bad.push(`${JSON.stringify(t)} (${[...t].map((c) => c.codePointAt(0)!.toString(16)).join(" ")}): ${got} != ${want}`);
    });
    assert.equal(bad.length, 0, `${bad.length}/3000 differ, e.g.\n${bad.slice(0, 4).join("\n")}`);
  });
}
