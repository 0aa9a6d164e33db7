/**
 * Byte-level BPE pipelines (GPT-2, Llama 3, Qwen2 style tokenizer.json: Split regex with (?i:…) and \p{..},
 * ByteLevel pre-tokenizer / decoder / post-processor, NFC, ignore_merges) against the Rust library on seeded
 * random strings. The tokenizer.json files are built from the llama.cpp test vocabularies (tokens + merges).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { readGguf } from "../../src/io/gguf.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { fixture, requirePeer } from "../helpers/peers.js";
import { randomString, rng } from "./random-text.js";

const N = 2000;
const dir = mkdtempSync(join(tmpdir(), "xverse-bytelevel-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function build(gguf: string, name: string, shape: (vocab: Record<string, number>, specials: string[]) => Record<string, unknown>): { file: string; specials: string[] } {
  const m = readGguf(fixture("llama.cpp-vocab-tests", gguf)).metadata;
  const tokens = m["tokenizer.ggml.tokens"] as string[];
  const types = m["tokenizer.ggml.token_type"] as number[];
  const vocab: Record<string, number> = {};
  const added: Record<string, unknown>[] = [];
  const specials: string[] = [];
  tokens.forEach((t, i) => {
    if (types[i] === 3) {
      added.push({ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
      specials.push(t);
    }
    vocab[t] = i;
  });
  const merges = (m["tokenizer.ggml.merges"] as string[]).map((x) => {
    const k = x.indexOf(" ", 1);
    return [x.slice(0, k), x.slice(k + 1)];
  }).filter(([a, b]) => vocab[a + b] !== undefined);
  const json = { version: "1.0", truncation: null, padding: null, added_tokens: added, ...shape(vocab, specials), model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: name === "llama3", vocab, merges } };
  const file = join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(json));
  return { file, specials };
}

async function compare(file: string, specials: string[], seed: number): Promise<void> {
  const { Tokenizer } = requirePeer("tokenizers");
  const rust = Tokenizer.fromFile(file);
  const ours = loadTokenizer(file);
  const r = rng(seed);
  const texts: string[] = [];
  for (let i = 0; i < N; i++) texts.push(randomString(r, specials.slice(0, 3)));
  const encs = await rust.encodeBatch(texts, { addSpecialTokens: true });
  const idLists: number[][] = encs.map((e: any) => e.getIds());
  const dec = await rust.decodeBatch(idLists, false);
  const bad: string[] = [];
  let offsetDiffs = 0;
  texts.forEach((t, i) => {
    const e = ours.encode(t);
    if (JSON.stringify(e.ids) !== JSON.stringify(idLists[i])) bad.push(`${JSON.stringify(t)}: ids ${JSON.stringify(e.ids)} != ${JSON.stringify(idLists[i])}`);
    else if (JSON.stringify(e.offsets) !== JSON.stringify(encs[i].getOffsets())) offsetDiffs++;
    if (ours.decode(idLists[i]) !== dec[i]) bad.push(`${JSON.stringify(t)}: decode ${JSON.stringify(ours.decode(idLists[i]))} != ${JSON.stringify(dec[i])}`);
  });
  assert.equal(bad.length, 0, `${bad.length} differences, e.g.\n${bad.slice(0, 4).join("\n")}`);
  assert.equal(offsetDiffs, 0, `${offsetDiffs} strings with different offsets`);
}

test(`GPT-2 style (ByteLevel pre-tokenizer regex, ByteLevel post-processor): ${N} random strings`, async () => {
  const { file, specials } = build("ggml-vocab-gpt-2.gguf", "gpt2", () => ({
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  }));
  await compare(file, specials, 7);
});

test(`Llama 3 style (Split with (?i:) regex, ignore_merges, TemplateProcessing): ${N} random strings`, async () => {
  const { file, specials } = build("ggml-vocab-llama-bpe.gguf", "llama3", () => ({
    normalizer: null,
    pre_tokenizer: { type: "Sequence", pretokenizers: [
      { type: "Split", pattern: { Regex: LLAMA3 }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    ] },
    post_processor: { type: "Sequence", processors: [
      { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
      { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }], pair: [], special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [128000], tokens: ["<|begin_of_text|>"] } } },
    ] },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  }));
  await compare(file, specials, 8);
});

test(`Qwen2 style (NFC normalizer, Split regex, ByteLevel): ${N} random strings`, async () => {
  const { file, specials } = build("ggml-vocab-qwen2.gguf", "qwen2", () => ({
    normalizer: { type: "NFC" },
    pre_tokenizer: { type: "Sequence", pretokenizers: [
      { type: "Split", pattern: { Regex: QWEN2 }, behavior: "Isolated", invert: false },
      { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    ] },
    post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
  }));
  await compare(file, specials, 9);
});
