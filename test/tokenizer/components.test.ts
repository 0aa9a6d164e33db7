/**
 * Component behaviour the golden files do not reach: unsupported types name themselves, streaming decode
 * never emits half a UTF-8 sequence or a wrong leading space, loading errors are clear, special ids resolve.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { XverseError } from "../../src/errors.js";
import { loadTokenizer, tokenizerFromJson } from "../../src/tokenizer/load.js";
import { fixture } from "../helpers/peers.js";

const xsFile = fixture("golden", "tokenizer-xverse-style", "tokenizer.json");
const base = JSON.parse(readFileSync(xsFile, "utf8")) as Record<string, any>;
const clone = (): Record<string, any> => JSON.parse(JSON.stringify(base));

test("unsupported components are named, never tokenized wrongly", () => {
  const cases: [string, (j: Record<string, any>) => void, RegExp][] = [
    ["pre_tokenizer", (j) => (j.pre_tokenizer = { type: "UnicodeScripts" }), /pre_tokenizer type UnicodeScripts is not supported/],
    ["nested pre_tokenizer", (j) => j.pre_tokenizer.pretokenizers.push({ type: "Mystery" }), /pre_tokenizer type Mystery is not supported/],
    ["normalizer", (j) => (j.normalizer = { type: "Precompiled", precompiled_charsmap: "" }), /normalizer type Precompiled is not supported/],
    ["model", (j) => (j.model = { type: "Unigram", vocab: [] }), /model type Unigram is not supported/],
    ["decoder", (j) => (j.decoder = { type: "CTC" }), /decoder type CTC is not supported/],
    ["post_processor", (j) => (j.post_processor = { type: "Fancy" }), /post_processor type Fancy is not supported/],
    ["POSIX class in a Split regex", (j) => j.pre_tokenizer.pretokenizers.push({ type: "Split", pattern: { Regex: "[[:alpha:]]+" }, behavior: "Isolated", invert: false }), /not supported/],
    ["class under (?i:)", (j) => j.pre_tokenizer.pretokenizers.push({ type: "Split", pattern: { Regex: "(?i:[a-z]+)" }, behavior: "Isolated", invert: false }), /not supported/],
    ["split behaviour", (j) => j.pre_tokenizer.pretokenizers.push({ type: "Split", pattern: { String: "x" }, behavior: "Sideways", invert: false }), /behavior Sideways is not supported/],
    ["BPE dropout", (j) => (j.model.dropout = 0.1), /dropout is not supported/],
  ];
  for (const [what, edit, re] of cases) {
    const j = clone();
    edit(j);
    assert.throws(() => tokenizerFromJson(j), (e: unknown) => e instanceof XverseError && e.code === "unsupported" && re.test(e.message), what);
  }
});

test("streaming decode: byte-fallback characters come out whole, the leading space only at the very start", () => {
  const tok = loadTokenizer(xsFile);
  // 𠀋 is not in the vocab: four byte tokens. Nothing may be emitted until the fourth.
  const text = "a 𠀋 b🤗 你好";
  const ids = tok.encode(text).ids;
  const d = tok.streamDecoder();
  const deltas = ids.map((id) => d.push(id));
  deltas.push(d.flush());
  for (const s of deltas) assert.ok(!s.includes("\ufffd"), `delta ${JSON.stringify(s)} holds a broken sequence`);
  assert.equal(deltas.join(""), tok.decode(ids));
  assert.equal(deltas[0], "a", "the first token's prefix space is dropped");
  // A second word keeps its space even though each window starts fresh.
  assert.ok(deltas.some((s) => s.startsWith(" ")), "later tokens keep their spaces");
  // Resumed after a special token: the text after it keeps its space, as in a full decode.
  const ids2 = [...tok.encode("Hi").ids, 3, ...tok.encode("there").ids];
  const d2 = tok.streamDecoder();
  assert.equal(ids2.map((id) => d2.push(id)).join("") + d2.flush(), tok.decode(ids2));
  const d3 = tok.streamDecoder({ skipSpecialTokens: true });
  assert.equal(ids2.map((id) => d3.push(id)).join("") + d3.flush(), tok.decode(ids2, { skipSpecialTokens: true }));
});

test("streaming decode on the embedded model (Replace/ByteFallback/Fuse/Strip decoder)", () => {
  const tok = loadTokenizer(fixture("golden", "stories260K"));
  const ids = tok.encode("Once upon a time, 🤗 there was a tiny llama.").ids;
  const d = tok.streamDecoder({ skipSpecialTokens: true });
  let s = "";
  for (const id of ids) {
    const delta = d.push(id);
    assert.ok(!delta.includes("\ufffd"));
    s += delta;
  }
  assert.equal(s + d.flush(), "Once upon a time, 🤗 there was a tiny llama.");
});

test("special ids come from tokenizer_config.json / special_tokens_map.json", () => {
  const tok = loadTokenizer(fixture("golden", "stories260K"));
  assert.equal(tok.bosId, 1);
  assert.equal(tok.eosId, 2);
  assert.ok(tok.isSpecial(1) && !tok.isSpecial(300));
  assert.equal(tok.idToToken(1), "<s>");
  assert.equal(tok.tokenToId("</s>"), 2);
  const x = tokenizerFromJson(base, { bos_token: "<|startoftext|>", eos_token: { content: "<|endoftext|>" }, pad_token: "<pad>" });
  assert.deepEqual([x.bosId, x.eosId, x.padId], [2, 3, 1]);
  assert.equal(x.vocabSize, 4099);
});

test("loading errors say what and where", () => {
  assert.throws(() => loadTokenizer("/no/such/place"), /does not exist/);
  assert.throws(() => loadTokenizer(fixture("golden", "stories260K", "config.json")), /no "model" object/);
  assert.throws(() => tokenizerFromJson({ model: { type: "BPE", vocab: { a: 0 }, merges: [["a", "b"]] } }), /not in the vocab/);
});

test("encode options: addSpecialTokens false leaves BOS out", () => {
  const tok = loadTokenizer(fixture("golden", "stories260K"));
  assert.equal(tok.encode("Once").ids[0], 1);
  assert.notEqual(tok.encode("Once", { addSpecialTokens: false }).ids[0], 1);
});
