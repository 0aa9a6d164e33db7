/**
 * Pipeline variants the shipped files do not use, each checked against the Rust library on seeded random
 * strings: Metaspace prepend_scheme "first" / split false, contiguous digits, every split behaviour,
 * Whitespace / WhitespaceSplit / Bert / CharDelimiterSplit / Split pre-tokenizers, added tokens with lstrip /
 * rstrip / single_word / normalized, unk with and without fuse_unk, Strip / Replace decoders.
 * (Strip with stop > 0 is left out: the Rust decoder panics on an empty string there.)
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { fixture, requirePeer } from "../helpers/peers.js";
import { randomString, rng } from "./random-text.js";

const N = 1000;
const dir = mkdtempSync(join(tmpdir(), "xverse-variants-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const xverse = JSON.parse(readFileSync(fixture("golden", "tokenizer-xverse-style", "tokenizer.json"), "utf8")) as Record<string, any>;
const stories = JSON.parse(readFileSync(fixture("golden", "stories260K", "tokenizer.json"), "utf8")) as Record<string, any>;
const copy = (j: Record<string, any>): Record<string, any> => JSON.parse(JSON.stringify(j));
const SPECIALS = ["<sep>", "<pad>", "<|endoftext|>", "<s>", "</s>", "<unk>", "<mask>", "hello", "HELLO"];

async function compare(name: string, json: Record<string, any>, seed: number): Promise<void> {
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(json));
  const { Tokenizer } = requirePeer("tokenizers");
  const rust = Tokenizer.fromFile(file);
  const ours = loadTokenizer(file);
  const r = rng(seed);
  const texts = Array.from({ length: N }, () => randomString(r, SPECIALS));
  const encs = await rust.encodeBatch(texts, { addSpecialTokens: true });
  const idLists: number[][] = encs.map((e: any) => e.getIds());
  const dec = await rust.decodeBatch(idLists, false);
  const decSkip = await rust.decodeBatch(idLists, true);
  const bad: string[] = [];
  texts.forEach((t, i) => {
    const e = ours.encode(t);
    const want = JSON.stringify([idLists[i], encs[i].getTokens(), encs[i].getOffsets()]);
    const got = JSON.stringify([e.ids, e.tokens, e.offsets]);
    if (want !== got) {
      const rt = encs[i].getTokens() as string[];
      const ro = encs[i].getOffsets() as number[][];
      let k = 0;
      while (k < e.ids.length && e.ids[k] === idLists[i][k] && e.tokens[k] === rt[k] && e.offsets[k][0] === ro[k][0] && e.offsets[k][1] === ro[k][1]) k++;
      bad.push(`${JSON.stringify(t)}: from token ${k}: ours ${JSON.stringify(e.tokens.slice(k, k + 4))} ${JSON.stringify(e.offsets.slice(k, k + 4))} vs ${JSON.stringify(rt.slice(k, k + 4))} ${JSON.stringify(ro.slice(k, k + 4))}`);
    }
    else if (ours.decode(idLists[i]) !== dec[i]) bad.push(`${JSON.stringify(t)}: decode ${JSON.stringify(ours.decode(idLists[i]))} != ${JSON.stringify(dec[i])}`);
    else if (ours.decode(idLists[i], { skipSpecialTokens: true }) !== decSkip[i]) bad.push(`${JSON.stringify(t)}: decode skip`);
  });
  assert.equal(bad.length, 0, `${bad.length}/${N} differ, e.g.\n${bad.slice(0, 3).join("\n").slice(0, 3000)}`);
}

const metaspaceFirst = (split: boolean) => ({ type: "Metaspace", replacement: "▁", prepend_scheme: "first", split });
const addedToken = (id: number, content: string, o: Record<string, boolean>) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...o });

const variants: [string, () => Record<string, any>][] = [
  ["metaspace-first-nosplit", () => {
    const j = copy(xverse);
    j.pre_tokenizer = { type: "Sequence", pretokenizers: [metaspaceFirst(false), { type: "Digits", individual_digits: false }] };
    j.decoder = { type: "Sequence", decoders: [{ type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: false }, { type: "ByteFallback" }] };
    return j;
  }],
  ["metaspace-never-behaviours", () => {
    const j = copy(xverse);
    j.pre_tokenizer = { type: "Sequence", pretokenizers: [
      { type: "Metaspace", replacement: "▁", prepend_scheme: "never", split: true },
      { type: "Punctuation", behavior: "MergedWithPrevious" },
      { type: "Split", pattern: { String: "的" }, behavior: "MergedWithNext", invert: false },
      { type: "Split", pattern: { Regex: "\\p{N}+" }, behavior: "Contiguous", invert: false },
    ] };
    j.decoder = { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] };
    return j;
  }],
  ["whitespace-family", () => {
    const j = copy(xverse);
    j.pre_tokenizer = { type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, { type: "Punctuation", behavior: "Removed" }, { type: "Split", pattern: { Regex: "[a-z]+" }, behavior: "Isolated", invert: true }] };
    return j;
  }],
  ["whitespace-bert", () => {
    const j = copy(xverse);
    j.pre_tokenizer = { type: "Sequence", pretokenizers: [{ type: "Whitespace" }, { type: "BertPreTokenizer" }, { type: "CharDelimiterSplit", delimiter: "的" }] };
    return j;
  }],
  ["added-token-flags", () => {
    const j = copy(xverse);
    j.normalizer = { type: "Lowercase" };
    j.added_tokens.push(addedToken(4099, "<mask>", { lstrip: true, rstrip: true }), addedToken(4100, "hello", { single_word: true, normalized: true, special: false }), addedToken(4101, "<s>", { rstrip: true, special: false }));
    return j;
  }],
  ["unk-fused", () => {
    const j = copy(stories);
    j.model.byte_fallback = false;
    return j;
  }],
  ["unk-not-fused", () => {
    const j = copy(stories);
    j.model.byte_fallback = false;
    j.model.fuse_unk = false;
    return j;
  }],
  ["no-unk-no-fallback", () => {
    const j = copy(xverse);
    j.model.byte_fallback = false;
    return j;
  }],
];

variants.forEach(([name, make], i) => {
  test(`variant ${name}: ${N} random strings identical to Rust tokenizers`, () => compare(name, make(), 100 + i));
});
