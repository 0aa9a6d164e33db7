/**
 * Golden cases from the Rust `tokenizers` library (test/fixtures/golden): ids, tokens, offsets (code points),
 * both decodes, and streaming decode concatenated = full decode.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import type { Tokenizer } from "../../src/tokenizer/types.js";
import { fixture } from "../helpers/peers.js";

interface Case {
  text: string;
  ids: number[];
  tokens: string[];
  offsets: [number, number][];
  decoded: string;
  decoded_skip_special: string;
}

function readCases(path: string): Case[] {
  return readFileSync(path, "utf8").split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l) as Case);
}

function streamed(tok: Tokenizer, ids: number[], skipSpecialTokens: boolean): string {
  const d = tok.streamDecoder({ skipSpecialTokens });
  let s = "";
  for (const id of ids) s += d.push(id);
  return s + d.flush();
}

function check(tokFile: string, casesFile: string, addSpecialTokens = true): void {
  const tok = loadTokenizer(tokFile);
  const cases = readCases(casesFile);
  let failures = 0;
  const first: string[] = [];
  for (const c of cases) {
    const e = tok.encode(c.text, { addSpecialTokens });
    const problems: string[] = [];
    try { assert.deepEqual(e.ids, c.ids); } catch { problems.push(`ids ${JSON.stringify(e.ids)} != ${JSON.stringify(c.ids)}`); }
    try { assert.deepEqual(e.tokens, c.tokens); } catch { problems.push(`tokens ${JSON.stringify(e.tokens)}`); }
    try { assert.deepEqual(e.offsets, c.offsets); } catch { problems.push(`offsets ${JSON.stringify(e.offsets)} != ${JSON.stringify(c.offsets)}`); }
    if (tok.decode(c.ids) !== c.decoded) problems.push(`decode ${JSON.stringify(tok.decode(c.ids))} != ${JSON.stringify(c.decoded)}`);
    if (tok.decode(c.ids, { skipSpecialTokens: true }) !== c.decoded_skip_special) problems.push(`decode skip ${JSON.stringify(tok.decode(c.ids, { skipSpecialTokens: true }))}`);
    if (streamed(tok, c.ids, false) !== c.decoded) problems.push(`stream ${JSON.stringify(streamed(tok, c.ids, false))}`);
    if (streamed(tok, c.ids, true) !== c.decoded_skip_special) problems.push("stream skip");
    if (problems.length > 0) {
      failures++;
      if (first.length < 5) first.push(`${JSON.stringify(c.text)}: ${problems.join("; ")}`);
    }
  }
  assert.equal(failures, 0, `${failures}/${cases.length} cases differ, e.g.\n${first.join("\n")}`);
}

const xs = (f: string): string => fixture("golden", "tokenizer-xverse-style", f);

test("xverse-style tokenizer.json: all golden cases", () => check(xs("tokenizer.json"), xs("cases.jsonl")));
test("xverse-style legacy spelling: all golden cases", () => check(xs("tokenizer.legacy.json"), xs("cases.legacy.jsonl")));
test("xverse-style with NFKC: all golden cases", () => check(xs("tokenizer.nfkc.json"), xs("cases.nfkc.jsonl")));
test("stories260K tokenizer.json: all golden cases (with BOS)", () =>
  check(fixture("golden", "stories260K", "tokenizer.json"), fixture("golden", "stories260K", "tokenizer_cases.jsonl")));
