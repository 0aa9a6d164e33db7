/**
 * Structured output (response_format): the tool-call recognizer on a document grammar. Random-weight and tiny
 * models write noise when left alone; constrained, every reply must parse and validate against its schema — with
 * ajv, an independent JSON-schema validator, as the oracle — over many sampled seeds and within max_new_tokens.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Ajv } from "ajv";
import { constrainedJsonHook, vocabPieces } from "../../src/chat/constrained.js";
import { CallRecognizer, compileSchema, documentGrammar, resolveRef } from "../../src/chat/json-prefix.js";
import { minCompletion } from "../../src/chat/json-budget.js";
import { schemaProblems } from "../../src/chat/schema-check.js";
import { generate } from "../../src/generate/generate.js";
import { defaultModelDir } from "../../src/model/embedded.js";
import { loadModel } from "../../src/model/load.js";
import { fixture } from "../helpers/peers.js";
import { checkMaskByBruteForce } from "./mask-check.js";

const ajv = new Ajv({ strict: false });

/** Every supported feature at once: $defs/$ref (recursive), anyOf, enum, const, nullable, lengths, items. */
export const PERSON = {
  type: "object",
  $defs: {
    pet: {
      type: "object",
      properties: { kind: { enum: ["cat", "dog", "fish"] }, name: { type: "string", minLength: 1, maxLength: 8 } },
      required: ["kind", "name"],
      additionalProperties: false,
    },
    tree: {
      type: "object",
      properties: { v: { type: "integer" }, kids: { type: "array", items: { $ref: "#/$defs/tree" }, maxItems: 2 } },
      required: ["v"],
      additionalProperties: false,
    },
  },
  properties: {
    name: { type: "string", minLength: 2, maxLength: 12 },
    age: { type: "integer" },
    score: { type: "number" },
    alive: { type: "boolean" },
    version: { const: 2 },
    nick: { type: ["string", "null"], maxLength: 6 },
    tags: { type: "array", items: { type: "string", maxLength: 5 }, minItems: 1, maxItems: 3 },
    pets: { type: "array", items: { $ref: "#/$defs/pet" }, maxItems: 2 },
    id: { anyOf: [{ type: "integer" }, { type: "string", enum: ["none"] }] },
    tree: { $ref: "#/$defs/tree" },
    empty: { type: "object", additionalProperties: false },
  },
  required: ["name", "age", "alive", "version", "tags", "pets", "id", "tree"],
  additionalProperties: false,
};

test("schemaProblems: the supported subset passes; unsupported keywords are named with their place", () => {
  assert.deepEqual(schemaProblems(PERSON), []);
  const bad = schemaProblems({
    type: "object",
    properties: { a: { type: "integer", minimum: 3 }, b: { type: "string", pattern: "^x", format: "email" }, c: { oneOf: [{ type: "null" }] } },
    required: ["a", "zz"],
  });
  assert.ok(bad.some((p) => p.startsWith('#/properties/a: "minimum": 3 is not supported')), bad.join("\n"));
  assert.ok(bad.some((p) => p.startsWith("#/properties/b:") && p.includes('"pattern"')));
  assert.ok(bad.some((p) => p.startsWith("#/properties/b:") && p.includes('"format"')));
  assert.ok(bad.some((p) => p.includes('"oneOf"')));
  assert.ok(bad.some((p) => p.includes('"zz" is required but not in properties')));
  assert.deepEqual(schemaProblems({ type: "array", items: {} }), ['#: the root must be an object schema ("type": "object"), got "array"']);
  assert.ok(schemaProblems({ type: "object", properties: { x: { $ref: "#/$defs/nope" } } })[0].includes("does not resolve"));
  assert.equal(resolveRef(PERSON, "#/$defs/pet"), PERSON.$defs.pet);
  assert.equal(resolveRef(PERSON, "#"), PERSON);
});

test("document recognizer: accepts exactly the compact JSON texts ajv accepts (hand-picked cases)", () => {
  const g = documentGrammar(compileSchema(PERSON, { maxStringLength: 64, maxItems: 8, maxFreeProperties: 4, maxDepth: 6, maxNumberDigits: 15 }));
  const validate = ajv.compile(PERSON);
  const good = {
    name: "Al", age: -3, alive: true, version: 2, tags: ["a"], pets: [{ kind: "cat", name: "T\"x" }], id: 7,
    tree: { v: 1, kids: [{ v: 2 }, { v: 3, kids: [] }] }, nick: null, score: 1.25, empty: {},
  };
  const accepts = (text: string): boolean => {
    const r = CallRecognizer.start(g);
    return r.feedText(text) && r.complete;
  };
  assert.ok(validate(good));
  assert.ok(accepts(JSON.stringify(good)));
  const variants: [unknown, boolean][] = [
    [{ ...good, version: 3 }, false],
    [{ ...good, id: "none" }, true],
    [{ ...good, id: "some" }, false],
    [{ ...good, tags: [] }, false],
    [{ ...good, name: "A" }, false],
    [{ ...good, extra: 1 }, false],
    [{ ...good, empty: { a: 1 } }, false],
    [{ ...good, pets: [{ kind: "cow", name: "x" }] }, false],
    [{ ...good, age: 1.5 }, false],
    [{ ...good, nick: "abcdefg" }, false],
  ];
  for (const [v, ok] of variants) {
    assert.equal(validate(v), ok, JSON.stringify(v));
    assert.equal(accepts(JSON.stringify(v)), ok, JSON.stringify(v));
  }
  const { alive: _drop, ...noAlive } = good;
  assert.equal(accepts(JSON.stringify(noAlive)), false, "a required key left out");
  assert.equal(accepts(JSON.stringify(good, null, 1)), false, "insignificant whitespace is not generated");
  // the budget: what the shortest valid completion still needs, from the start
  const r = CallRecognizer.start(g);
  const shortest = '{"name":"  ","age":0,"alive":true,"version":2,"tags":[""],"pets":[],"id":0,"tree":{"v":0}}';
  assert.equal(minCompletion(r), shortest.length);
  assert.ok(accepts(shortest.replace('"  "', '"ab"')));
});

/** Generates with the JSON hook; returns the reply text and why it stopped. */
async function run(m: Awaited<ReturnType<typeof loadModel>>, schema: Record<string, unknown> | null, seed: number, maxNewTokens: number, prompt: string) {
  const tok = m.tokenizer;
  const eos = tok.eosId ?? 2;
  const hook = constrainedJsonHook(tok, schema, { eosTokenIds: [eos], maxNewTokens });
  const ids = tok.encode(prompt, { addSpecialTokens: true }).ids;
  const it = generate(m.model, tok, ids, { maxNewTokens, logitsHook: hook, eosTokenIds: [eos], seed, temperature: 1.2, continuation: false });
  let text = "", n = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) return { text: r.value.text, finish: r.value.finishReason, n, state: hook.state };
    text += r.value.text;
    n++;
  }
}

for (const [name, dir] of [["stories260K", defaultModelDir()], ["tiny-xverse", fixture("golden", "tiny-xverse")]] as const) {
  test(`${name}: sampled replies under PERSON (24 seeds) and json_object (8 seeds) parse and validate within max_new_tokens`, async () => {
    const m = await loadModel(dir, { backend: "ts" });
    const validate = ajv.compile(PERSON);
    for (let seed = 1; seed <= 24; seed++) {
      const max = 90 + (seed % 4) * 40;
      const r = await run(m, PERSON, seed, max, "Once upon a time");
      assert.ok(r.n <= max);
      let v: unknown;
      assert.doesNotThrow(() => (v = JSON.parse(r.text)), `seed ${seed}: ${r.text}`);
      assert.ok(validate(v), `seed ${seed}: ${r.text}: ${ajv.errorsText(validate.errors)}`);
      // eos right after the document, unless the document took the last allowed token
      assert.ok(r.finish === "eos" || r.n === max, `seed ${seed}: ${r.finish} after ${r.n}`);
    }
    for (let seed = 1; seed <= 8; seed++) {
      const r = await run(m, null, seed, 40, "Lily");
      const v = JSON.parse(r.text);
      assert.ok(v && typeof v === "object" && !Array.isArray(v), r.text);
    }
  });
}

test("the piece table the mask uses covers the JSON punctuation on both vocabularies", async () => {
  for (const dir of [defaultModelDir(), fixture("golden", "tiny-xverse")]) {
    const { tokenizer } = await loadModel(dir, { backend: "ts" });
    const pieces = new Set(vocabPieces(tokenizer));
    for (const ch of ['{', '}', '"', ':', ',', '[', ']', '0', '-']) assert.ok(pieces.has(ch), `${dir}: no token for ${ch}`);
  }
});

test("chatTurn responseFormat json_schema: the reply parses into ChatResult.json and validates; bad schemas throw naming the keyword", async () => {
  const { chatTurn } = await import("../../src/chat/chat.js");
  const m = await loadModel(fixture("golden", "tiny-xverse"), { backend: "ts" });
  const validate = ajv.compile(PERSON);
  for (let seed = 1; seed <= 4; seed++) {
    const r = await chatTurn(m.model, m.tokenizer, [{ role: "user", content: "a person" }], { generationConfig: m.generationConfig, responseFormat: { type: "json_schema", schema: PERSON }, maxNewTokens: 150, seed, temperature: 1 });
    assert.ok(validate(r.json), `seed ${seed}: ${r.text}`);
    assert.deepEqual(r.json, JSON.parse(r.text));
  }
  await assert.rejects(
    chatTurn(m.model, m.tokenizer, [{ role: "user", content: "x" }], { responseFormat: { type: "json_schema", schema: { type: "object", properties: { n: { type: "number", multipleOf: 2 } } } } }),
    (e: Error) => e.name === "XverseError" && /#\/properties\/n: "multipleOf" is not supported/.test(e.message),
  );
});

test("the JSON hook's mask equals a brute-force check of every token (recognizer + piece-priced budget), json_schema and json_object", async () => {
  const { pieceCost, JSON_LIMITS } = await import("../../src/chat/constrained.js");
  const m = await loadModel(fixture("golden", "tiny-xverse"), { backend: "ts" });
  const tok = m.tokenizer;
  const pieces = vocabPieces(tok);
  const V = m.model.config.vocabSize;
  const freeObject = { k: "obj" as const, props: null, required: [], maxProps: JSON_LIMITS.maxFreeProperties, free: { k: "any" as const, maxLength: JSON_LIMITS.maxStringLength, maxDigits: 15 } };
  for (const schema of [PERSON, null]) {
    const grammar = { ...documentGrammar(schema ? compileSchema(schema, JSON_LIMITS) : freeObject), litCost: (s: string) => pieceCost(tok, s) };
    for (const [seed, maxNew] of [[1, 90], [2, 140]]) {
      const hook = constrainedJsonHook(tok, schema, { eosTokenIds: [3], maxNewTokens: maxNew });
      const text = checkMaskByBruteForce(hook, { grammar, pieces, vocabSize: V, seed, maxNew, overBudget: true, label: `${schema ? "schema" : "object"} ` });
      if (schema) assert.ok(ajv.validate(schema, JSON.parse(text)), text);
    }
  }
});

test("numeric bounds: zod-style ±(2^53-1), minimum 0, exclusiveMinimum 0, an integer's minimum 1 hold over 16 seeds; others are named", async () => {
  const schema = {
    type: "object",
    properties: {
      big: { type: "integer", minimum: -9007199254740991, maximum: 9007199254740991 },
      count: { type: "integer", minimum: 0 },
      id: { type: "integer", minimum: 1 },
      score: { type: "number", exclusiveMinimum: 0 },
      ratio: { type: "number", minimum: 0, maximum: 1e15 },
    },
    required: ["big", "count", "id", "score", "ratio"],
    additionalProperties: false,
  };
  assert.deepEqual(schemaProblems(schema), []);
  const bad = schemaProblems({ type: "object", properties: { a: { type: "integer", minimum: 5 }, b: { type: "number", maximum: 10 } } });
  assert.ok(bad.some((p) => p.startsWith('#/properties/a: "minimum": 5 is not supported')), bad.join("\n"));
  assert.ok(bad.some((p) => p.startsWith('#/properties/b: "maximum": 10 is not supported')));
  // the recognizer: no minus where a lower bound of 0 holds, no zero where the value must be positive
  const g = documentGrammar(compileSchema(schema));
  const accepts = (v: unknown): boolean => { const r = CallRecognizer.start(g); return r.feedText(JSON.stringify(v)) && r.complete; };
  const ok = { big: -12, count: 0, id: 3, score: 0.5, ratio: 0 };
  assert.ok(accepts(ok));
  for (const [k, v] of [["count", -1], ["id", 0], ["score", 0], ["ratio", -0.5]] as const) assert.equal(accepts({ ...ok, [k]: v }), false, `${k} = ${v}`);
  const m = await loadModel(fixture("golden", "tiny-xverse"), { backend: "ts" });
  const validate = ajv.compile(schema);
  for (let seed = 1; seed <= 16; seed++) {
    const r = await run(m, schema, seed, 80, "numbers");
    assert.ok(validate(JSON.parse(r.text)), `seed ${seed}: ${r.text}: ${ajv.errorsText(validate.errors)}`);
  }
});
