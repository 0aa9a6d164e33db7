/**
 * llama.cpp's tokenizer test vectors (test/fixtures/llama.cpp-vocab-tests): vocab-only GGUF files, inputs in
 * .inp, expected ids in .out (add_special = false, parse_special = false).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { readGguf } from "../../src/io/gguf.js";
import { tokenizerFromGguf } from "../../src/tokenizer/gguf-vocab.js";
import { fixture } from "../helpers/peers.js";

const dir = fixture("llama.cpp-vocab-tests");
const files = readdirSync(dir).filter((f) => f.endsWith(".gguf")).sort();

test("the vocab test directory holds at least the 9 required vocabularies", () => {
  assert.ok(files.length >= 9, `found ${files.length}`);
});

for (const f of files) {
  test(`llama.cpp vocab test: ${f}`, () => {
    const tok = tokenizerFromGguf(readGguf(`${dir}/${f}`).metadata);
    const inputs = readFileSync(`${dir}/${f}.inp`, "utf8").split("\n__ggml_vocab_test__\n");
    inputs.pop(); // the file ends with the separator
    const expected = readFileSync(`${dir}/${f}.out`, "utf8").split("\n");
    assert.equal(inputs.length, 46);
    const bad: string[] = [];
    inputs.forEach((text, i) => {
      const want = expected[i].trim() === "" ? [] : expected[i].trim().split(/\s+/).map(Number);
      const got = tok.encode(text, { addSpecialTokens: false, parseSpecial: false }).ids;
      if (JSON.stringify(got) !== JSON.stringify(want)) bad.push(`${JSON.stringify(text)}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
    });
    assert.equal(bad.length, 0, `${bad.length}/46 differ:\n${bad.slice(0, 6).join("\n")}`);
    // Decoding gives the text back (SPM dropping the space prefix it added; vocabularies with llama.cpp's
    // clean_spaces lose the space before punctuation, so they are checked through the stream decoder).
    for (const text of inputs) {
      const ids = tok.encode(text, { addSpecialTokens: false, parseSpecial: false }).ids;
      if (!tok.cleanSpaces) assert.equal(tok.decode(ids), text, `round trip of ${JSON.stringify(text)}`);
      const d = tok.streamDecoder();
      assert.equal(ids.map((id) => d.push(id)).join("") + d.flush(), text, `streamed round trip of ${JSON.stringify(text)}`);
    }
  });
}
