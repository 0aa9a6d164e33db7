/**
 * Differential test against the Rust implementation (npm `tokenizers`, a peer used only by tests):
 * 20,000 seeded random strings per tokenizer; ids, tokens, offsets and both decodes must be identical.
 * Also decodes random id sequences (byte tokens in odd orders, special tokens anywhere).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { fixture, requirePeer } from "../helpers/peers.js";
import { randomString, rng } from "./random-text.js";

const N = Number(process.env.XVERSE_DIFF_N ?? 20000);
const BATCH = 500;

async function differential(file: string, seed: number, n = N, strictOffsets = true): Promise<number> {
  const { Tokenizer } = requirePeer("tokenizers");
  const rust = Tokenizer.fromFile(file);
  const ours = loadTokenizer(file);
  const r = rng(seed);
  const mismatches: string[] = [];
  let count = 0;
  let offsetMismatches = 0;
  for (let b = 0; b < n; b += BATCH) {
    const texts: string[] = [];
    for (let i = 0; i < BATCH && b + i < n; i++) texts.push(randomString(r));
    const add = b % (2 * BATCH) === 0;
    const encs = await rust.encodeBatch(texts, { addSpecialTokens: add });
    const idLists: number[][] = encs.map((e: any) => e.getIds());
    const dec = await rust.decodeBatch(idLists, false);
    const decSkip = await rust.decodeBatch(idLists, true);
    for (let i = 0; i < texts.length; i++) {
      count++;
      const e = ours.encode(texts[i], { addSpecialTokens: add });
      const what: string[] = [];
      if (!sameArray(e.ids, idLists[i])) what.push(`ids ${JSON.stringify(e.ids)} != ${JSON.stringify(idLists[i])}`);
      else {
        if (!sameArray(e.tokens, encs[i].getTokens())) what.push("tokens");
        const ro = encs[i].getOffsets() as number[][];
        if (!e.offsets.every((o, k) => o[0] === ro[k][0] && o[1] === ro[k][1])) {
          offsetMismatches++;
          if (strictOffsets) what.push(`offsets ${JSON.stringify(e.offsets)} != ${JSON.stringify(ro)}`);
        }
      }
      if (ours.decode(idLists[i]) !== dec[i]) what.push(`decode ${JSON.stringify(ours.decode(idLists[i]))} != ${JSON.stringify(dec[i])}`);
      if (ours.decode(idLists[i], { skipSpecialTokens: true }) !== decSkip[i]) what.push("decode skip_special");
      if (what.length > 0) mismatches.push(`${JSON.stringify(texts[i])}: ${what.join("; ")}`);
    }
  }
  assert.ok(count >= n);
  assert.equal(mismatches.length, 0, `${mismatches.length}/${count} strings differ (${offsetMismatches} in offsets), e.g.\n${mismatches.slice(0, 5).join("\n")}`);
  return offsetMismatches;
}

async function randomDecodes(file: string, seed: number): Promise<void> {
  const { Tokenizer } = requirePeer("tokenizers");
  const rust = Tokenizer.fromFile(file);
  const ours = loadTokenizer(file);
  const r = rng(seed);
  const V = ours.vocabSize;
  const lists: number[][] = [];
  for (let i = 0; i < 2000; i++) {
    const n = Math.floor(r() * 12);
    const ids: number[] = [];
    // bias towards low ids: special and byte tokens live there
    for (let k = 0; k < n; k++) ids.push(r() < 0.5 ? Math.floor(r() * 270) : Math.floor(r() * (V + 5)));
    lists.push(ids);
  }
  for (const skip of [false, true]) {
    const want = await rust.decodeBatch(lists, skip);
    const bad = lists.filter((ids, i) => ours.decode(ids, { skipSpecialTokens: skip }) !== want[i]);
    assert.equal(bad.length, 0, `decode differs for ${bad.length} id lists, e.g. ${JSON.stringify(bad[0])}: ${JSON.stringify(ours.decode(bad[0] ?? [], { skipSpecialTokens: skip }))} vs ${JSON.stringify(want[lists.indexOf(bad[0])])}`);
  }
}

function sameArray<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const xverse = fixture("golden", "tokenizer-xverse-style", "tokenizer.json");
const stories = fixture("golden", "stories260K", "tokenizer.json");

test(`xverse-style: ${N} random strings identical to Rust tokenizers`, async () => { await differential(xverse, 1234); });
test(`stories260K: ${N} random strings identical to Rust tokenizers`, async () => { await differential(stories, 5678); });
test("xverse-style NFKC: 3000 random strings identical to Rust tokenizers (offsets included)", async () => {
  await differential(fixture("golden", "tokenizer-xverse-style", "tokenizer.nfkc.json"), 91011, 3000);
});
test("random id sequences decode identically", async () => {
  await randomDecodes(xverse, 42);
  await randomDecodes(stories, 43);
});
