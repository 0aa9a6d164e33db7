/**
 * What constrained decoding costs per token on a large real vocabulary: the one-time table (every token's
 * mid-sequence text + the character trie + piece prices) and the per-token mask (trie walk under the recognizer
 * and the token budget), for a json_schema reply and a forced tool call. The vocabularies are llama.cpp's test
 * GGUFs: deepseek-llm (102,400 tokens, byte-level BPE with English and Chinese — the nearest in size and kind
 * to XVERSE's 100,534) and qwen2 (151,643).
 * Usage: npm run build && node dist/bench/json-mask.js [--steps 200]
 * The logits are random (the mask's cost depends on the state, not on the values), the pick is the best allowed
 * token, so the walk goes through strings, numbers, keys and arrays as a real reply does.
 */
import { parseArgs } from "node:util";
import { constrainedJsonHook, constrainedToolCallHook } from "../src/chat/constrained.js";
import { readGguf } from "../src/io/gguf.js";
import { tokenizerFromGguf } from "../src/tokenizer/gguf-vocab.js";
import { fixture } from "../test/helpers/peers.js";
import { machineInfo } from "./machine.js";

const { values: flags } = parseArgs({ options: { steps: { type: "string", default: "200" } } });
const STEPS = Number(flags.steps);

const SCHEMA = {
  type: "object",
  properties: {
    title: { type: "string", maxLength: 200 },
    year: { type: "integer" },
    rating: { anyOf: [{ type: "number" }, { type: "null" }] },
    genres: { type: "array", items: { enum: ["drama", "comedy", "documentary", "thriller"] }, maxItems: 3 },
    cast: { type: "array", items: { type: "object", properties: { name: { type: "string" }, role: { type: "string" } }, required: ["name", "role"], additionalProperties: false }, maxItems: 4 },
  },
  required: ["title", "year", "rating", "genres", "cast"],
  additionalProperties: false,
};
const TOOLS = [{ type: "function", function: { name: "search_flights", parameters: { type: "object", properties: { from: { type: "string" }, to: { type: "string" }, date: { type: "string" }, passengers: { type: "integer" } }, required: ["from", "to", "date"] } } }];

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

console.log(`# ${JSON.stringify(machineInfo())}`);
for (const name of ["deepseek-llm", "qwen2"]) {
  const tok = tokenizerFromGguf(readGguf(fixture("llama.cpp-vocab-tests", `ggml-vocab-${name}.gguf`)).metadata);
  const V = tok.vocabSize;
  const eos = tok.eosId ?? 0;
  const t0 = performance.now();
  // the first hook builds the per-tokenizer table (cached for every later request)
  constrainedJsonHook(tok, SCHEMA, { eosTokenIds: [eos] });
  const tableMs = performance.now() - t0;
  console.log(`\n${name}: vocabulary ${V}, table (pieces + trie) ${tableMs.toFixed(0)} ms once per tokenizer`);
  for (const [kind, make] of [
    ["json_schema", () => constrainedJsonHook(tok, SCHEMA, { eosTokenIds: [eos], maxNewTokens: STEPS })],
    ["json_object", () => constrainedJsonHook(tok, null, { eosTokenIds: [eos], maxNewTokens: STEPS })],
    ["forced tool call", () => constrainedToolCallHook(tok, TOOLS, { force: true, eosTokenIds: [eos], maxNewTokens: STEPS })],
  ] as const) {
    const times: number[] = [];
    const allowedCounts: number[] = [];
    for (let seed = 1; seed <= 3; seed++) {
      const hook = make();
      let state = seed * 7919;
      const rand = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
      const ids = [eos];
      const logits = new Float32Array(V);
      for (let step = 0; step < STEPS; step++) {
        for (let i = 0; i < V; i++) logits[i] = rand();
        const t = performance.now();
        hook(ids, logits);
        times.push(performance.now() - t);
        let best = -1, n = 0;
        for (let i = 0; i < V; i++) if (logits[i] > -Infinity) { n++; if (best < 0 || logits[i] > logits[best]) best = i; }
        allowedCounts.push(n);
        if (best === eos || best < 0) break;
        ids.push(best);
      }
    }
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    console.log(`  ${kind.padEnd(16)} ${times.length} steps: mask mean ${mean.toFixed(2)} ms, p50 ${pct(times, 0.5).toFixed(2)}, p95 ${pct(times, 0.95).toFixed(2)}, max ${Math.max(...times).toFixed(1)} ms; allowed tokens p50 ${pct(allowedCounts, 0.5)}, max ${Math.max(...allowedCounts)}`);
  }
}
