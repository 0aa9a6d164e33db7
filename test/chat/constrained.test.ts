/**
 * Constrained tool calls on the tiny-xverse model (random weights): left alone it writes noise, constrained it
 * must write a call that parses and meets the tool's schema, then stop.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chatTurn } from "../../src/chat/chat.js";
import { constrainedToolCallHook, vocabPieces } from "../../src/chat/constrained.js";
import { validateValue } from "../../src/chat/schema.js";
import { normalizeTools } from "../../src/chat/tools.js";
import { parseToolCall } from "../../src/chat/parse.js";
import { generate } from "../../src/generate/generate.js";
import { loadModel } from "../../src/model/load.js";
import { fixture } from "../helpers/peers.js";
import { checkMaskByBruteForce } from "./mask-check.js";
import { README_PLUGINS } from "./readme-fixtures.js";

const DIR = fixture("golden", "tiny-xverse");
const { model, tokenizer: tok, generationConfig: gc } = await loadModel(DIR, { backend: "ts" });
const config = model.config;

const WEATHER = {
  type: "object",
  properties: {
    city: { type: "string", description: "城市" },
    days: { type: "integer" },
    unit: { type: "string", enum: ["celsius", "fahrenheit"] },
    hourly: { type: "boolean" },
    tags: { type: "array", items: { type: "string" }, maxItems: 2 },
  },
  required: ["city", "unit"],
};
const TOOLS = [{ type: "function", function: { name: "get_weather", description: "天气", parameters: WEATHER } }];
const LIMITS = { maxStringLength: 12, maxNumberDigits: 6 };

async function run(promptIds: number[], hook: ReturnType<typeof constrainedToolCallHook>, seed: number | null, maxNewTokens = 200) {
  const it = generate(model, tok, promptIds, { maxNewTokens, logitsHook: hook, eosTokenIds: [3], ...(seed === null ? { greedy: true } : { seed, temperature: 1 }) });
  let text = "";
  for (;;) {
    const r = await it.next();
    if (r.done) return { text, finish: r.value.finishReason };
    text += r.value.text;
  }
}

test("piece texts: what each token adds mid-sequence (Metaspace space kept, bytes decoded, specials excluded)", () => {
  const pieces = vocabPieces(tok);
  assert.equal(pieces.length, tok.vocabSize);
  assert.equal(pieces[3], null); // <|endoftext|> is special
  assert.equal(pieces[tok.tokenToId("<0x0A>")!], "\n");
  assert.equal(pieces[tok.tokenToId("<0xE4>")!], null); // a lone lead byte of a 3-byte character
  assert.equal(pieces[tok.tokenToId("▁H")!], " H");
});

test("forced: the random model writes a schema-valid get_weather call, then eos (greedy and 12 sampled seeds)", async () => {
  const prompt = tok.encode("Human: ", { addSpecialTokens: false }).ids.concat(tok.encode("上海明天天气如何？\n\n", { addSpecialTokens: false }).ids, tok.encode("Assistant: ", { addSpecialTokens: false }).ids);
  for (const seed of [null, ...Array.from({ length: 12 }, (_, i) => i + 1)]) {
    const hook = constrainedToolCallHook(tok, TOOLS, { force: true, eosTokenIds: [3], limits: LIMITS });
    const { text, finish } = await run(prompt, hook, seed);
    assert.equal(finish, "eos", `seed ${seed}: ${text}`);
    assert.equal(hook.state, "done");
    assert.ok(text.startsWith("<|startofthink|>```JSON\n{") && text.endsWith("```<|endofthink|>"), text);
    const r = parseToolCall(text);
    assert.ok(r.call, `seed ${seed}: ${r.error}: ${text}`);
    assert.equal(r.call!.name, "get_weather");
    assert.deepEqual(validateValue(WEATHER, r.call!.arguments), [], text);
  }
});

test("unconstrained, the same model does not produce a call (the constraint is doing the work)", async () => {
  const prompt = tok.encode("Human: 上海天气\n\nAssistant: ", { addSpecialTokens: false }).ids;
  const it = generate(model, tok, prompt, { maxNewTokens: 40, greedy: true });
  let text = "";
  for (let r = await it.next(); !r.done; r = await it.next()) text += r.value.text;
  assert.equal(parseToolCall(text).call, null);
});

test("auto: free text until the model writes <|startofthink|>, then only a valid call (scripted marker, random logits)", () => {
  const tools = normalizeTools(README_PLUGINS);
  for (let seed = 1; seed <= 8; seed++) {
    const hook = constrainedToolCallHook(tok, tools, { eosTokenIds: [3], limits: LIMITS });
    let state = seed * 7919;
    const rand = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const ids = [...tok.encode("Human: 订酒店\n\nAssistant: ", { addSpecialTokens: false }).ids];
    const script = tok.encode("好的，请稍等\n<|startofthink|>", { addSpecialTokens: false }).ids;
    const logits = new Float32Array(config.vocabSize);
    let text = "";
    for (let step = 0; step < 400; step++) {
      for (let i = 0; i < logits.length; i++) logits[i] = rand() * 10;
      hook(ids, logits);
      let id: number;
      if (step < script.length) {
        id = script[step];
        assert.ok(logits[id] > -Infinity, "free text is not masked");
        assert.equal(hook.state, "free");
      } else {
        id = 0;
        for (let i = 1; i < logits.length; i++) if (logits[i] > logits[id]) id = i;
      }
      if (id === 3) break;
      ids.push(id);
      text += tok.decode([id], { skipSpecialTokens: false });
    }
    assert.equal(hook.state, "done", text);
    const r = parseToolCall(tok.decode(ids.slice(-(ids.length - 9)), { skipSpecialTokens: false }));
    assert.ok(r.call, `${r.error}: ${text}`);
    const spec = tools.find((t) => t.name === r.call!.name)!;
    assert.deepEqual(validateValue(spec.schema, r.call!.arguments), []);
  }
});

test("chatTurn with tools and constrainToolCalls 'force': the call closes within max_new_tokens (default limits)", async () => {
  const history = [{ role: "user" as const, content: "北京明天天气" }];
  for (const [seed, maxNewTokens] of [[7, undefined], [8, 100], [9, 100], [10, 110]] as const) {
    const r = await chatTurn(model, tok, history, { generationConfig: gc, tools: TOOLS, constrainToolCalls: "force", seed, maxNewTokens });
    assert.ok(r.reply.call, `seed ${seed}: ${r.reply.error}: ${r.text}`);
    assert.deepEqual(validateValue(WEATHER, r.reply.call!.arguments), []);
    assert.ok(["tool_calls", "eos"].includes(r.finishReason), r.finishReason);
    assert.ok(r.ids.length <= (maxNewTokens ?? 128));
  }
  assert.equal(history.length, 1, "history untouched without appendToHistory");
});

test("the hook's mask equals a brute-force check of every token (recognizer + remaining-length budget)", async () => {
  const { compileSchema, DEFAULT_LIMITS } = await import("../../src/chat/json-prefix.js");
  const { CALL_PREFIX, CALL_SUFFIX, pieceCost } = await import("../../src/chat/constrained.js");
  const specs = normalizeTools([...TOOLS, ...README_PLUGINS]);
  const grammar = {
    prefix: "<|startofthink|>" + CALL_PREFIX,
    suffix: CALL_SUFFIX,
    tools: new Map(specs.map((t) => [t.name, compileSchema(t.schema, DEFAULT_LIMITS)])),
    litCost: (s: string) => pieceCost(tok, s),
  };
  const pieces = vocabPieces(tok);
  const maxNew = 120;
  for (let seed = 1; seed <= 2; seed++) {
    const hook = constrainedToolCallHook(tok, specs, { force: true, eosTokenIds: [3], maxNewTokens: maxNew });
    checkMaskByBruteForce(hook, { grammar, pieces, vocabSize: config.vocabSize, seed, maxNew });
  }
});

test("pieceCost (the budget's price of fixed text) equals an exhaustive search over the piece table", async () => {
  const { pieceCost } = await import("../../src/chat/constrained.js");
  const pieces = vocabPieces(tok);
  const set = new Set(pieces.filter((p): p is string => p !== null));
  const memo = new Map<string, number>();
  const brute = (s: string): number => {
    if (s === "") return 0;
    if (memo.has(s)) return memo.get(s)!;
    let best = Infinity;
    for (let i = 1; i <= s.length; i++) if (set.has(s.slice(0, i))) best = Math.min(best, 1 + brute(s.slice(i)));
    memo.set(s, best);
    return best;
  };
  for (const s of ["<|startofthink|>```JSON\n{\"api_name\":", "}```<|endofthink|>", '"get_weather"', ',"parameters":', '"unit":', "celsius", "true", "上海天气"]) {
    const want = brute(s);
    assert.equal(pieceCost(tok, s), Number.isFinite(want) ? want : [...s].length, s);
    assert.ok(pieceCost(tok, s) <= tok.encode(s, { addSpecialTokens: false }).ids.length + 1, s);
  }
});
