import { test } from "node:test";
import assert from "node:assert/strict";
import { CallRecognizer, compileSchema, type CallGrammar } from "../../src/chat/json-prefix.js";
import { parseToolCall } from "../../src/chat/parse.js";
import { validateValue, type JsonSchema } from "../../src/chat/schema.js";
import { normalizeTools } from "../../src/chat/tools.js";
import { README_PLUGINS } from "./readme-fixtures.js";
import { rng } from "../helpers/rng.js";

const WEATHER: JsonSchema = {
  type: "object",
  properties: {
    city: { type: "string", description: "city" },
    days: { type: "integer", minimum: 1 },
    unit: { type: "string", enum: ["c", "f"] },
    hourly: { type: "boolean" },
    tags: { type: "array", items: { type: "string", maxLength: 5 }, maxItems: 3 },
    where: { type: "object", properties: { lat: { type: "number" }, lon: { type: "number" } }, required: ["lat", "lon"] },
    note: { type: ["string", "null"] },
  },
  required: ["city", "unit"],
};

const tools = normalizeTools([{ type: "function", function: { name: "get_weather", parameters: WEATHER } }, ...README_PLUGINS]);
const grammar: CallGrammar = {
  prefix: "```JSON\n{",
  suffix: "}```<|endofthink|>",
  tools: new Map(tools.map((t) => [t.name, compileSchema(t.schema)])),
};

function callText(name: string, args: unknown): string {
  return `\`\`\`JSON\n{"api_name":${JSON.stringify(name)},"parameters":${JSON.stringify(args)}}\`\`\`<|endofthink|>`;
}

test("accepts valid calls character by character, and is complete exactly at the end", () => {
  const calls: [string, unknown][] = [
    ["get_weather", { city: "上海", unit: "c" }],
    ["get_weather", { unit: "f", city: "a\"b\\n", days: 12, hourly: false, tags: ["x", "y"], where: { lon: -1.5, lat: 0 }, note: null }],
    ["hotel_search", { city: "上海", check_in: "2007-03-09", check_out: "2007-03-10", guests: 2, rooms: 1, price_min: 300, amenities: "停车场" }],
    ["recommendation", {}],
    ["touristAttraction", { city: "北京" }],
  ];
  for (const [name, args] of calls) {
    const text = callText(name, args);
    const m = CallRecognizer.start(grammar);
    let i = 0;
    for (const ch of text) {
      assert.equal(m.complete, false);
      assert.ok(m.feed(ch), `rejected ${JSON.stringify(ch)} at ${i} of ${text}`);
      i++;
    }
    assert.ok(m.complete, text);
    assert.equal(m.tool, name);
    assert.equal(m.clone().feed(" "), false, "nothing may follow the end marker");
  }
});

test("rejects what the schema or the compact grammar forbids", () => {
  const bad = [
    callText("no_such_tool", {}),
    callText("get_weather", { city: "x" }), // required "unit" missing
    callText("get_weather", { city: "x", unit: "k" }), // not in the enum
    callText("get_weather", { city: 1, unit: "c" }), // wrong type
    callText("get_weather", { city: "x", unit: "c", extra: 1 }), // unknown key
    callText("get_weather", { city: "x", unit: "c", days: 1.5 }), // integer
    callText("get_weather", { city: "x", unit: "c", tags: ["toolong"] }), // maxLength 5
    callText("get_weather", { city: "x", unit: "c", tags: ["a", "b", "c", "d"] }), // maxItems 3
    callText("get_weather", { city: "x", unit: "c", where: { lat: 1 } }), // nested required
    callText("hotel_search", { city: "上海" }), // README plugin: required params missing
    callText("touristAttraction", {}), // "required": "True" counts as required
    '```JSON\n{ "api_name":"recommendation","parameters":{}}```<|endofthink|>', // whitespace
    '```JSON\n{"api_name":"get_weather","parameters":{"city":"x","city":"y","unit":"c"}}```<|endofthink|>', // duplicate key
    '```JSON\n{"api_name":"get_weather","parameters":{"city":"x","unit":"c","days":01}}```<|endofthink|>', // leading zero
  ];
  for (const text of bad) {
    const m = CallRecognizer.start(grammar);
    assert.equal(m.feedText(text) && m.complete, false, text);
  }
});


// every character a JSON call can need, plus distractors; a random walk over it stands in for a random model
const ALPHABET = [...new Set([..."{}[]:,\"\\/-.0123456789 \n\tabcdefghijklmnopqrstuvwxyz_ABCJNOSTU`<|>上海停车场", "\u0001"])];

test("a random walk through the recognizer always ends in a parsable, schema-valid call", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const rand = rng(seed);
    const m = CallRecognizer.start(grammar);
    let text = "";
    for (let steps = 0; !m.complete; steps++) {
      assert.ok(steps < 5000, `seed ${seed}: no end after 5000 characters: ${text}`);
      const options = ALPHABET.filter((ch) => m.clone().feed(ch));
      assert.ok(options.length > 0, `seed ${seed}: dead end after ${JSON.stringify(text)}`);
      const ch = options[Math.floor(rand() * options.length)];
      m.feed(ch);
      text += ch;
    }
    const r = parseToolCall(`<|startofthink|>${text}`);
    assert.ok(r.call, `seed ${seed}: ${r.error} in ${text}`);
    const spec = tools.find((t) => t.name === r.call!.name)!;
    // minimum is the one keyword the recognizer does not enforce while decoding
    const schema = spec.name === "get_weather" ? { ...WEATHER, properties: { ...(WEATHER.properties as object), days: { type: "integer" } } } : spec.schema;
    assert.deepEqual(validateValue(schema, r.call!.arguments), [], `seed ${seed}: ${text}`);
  }
});

test("validateValue reports problems by path", () => {
  assert.deepEqual(validateValue(WEATHER, { city: "x", unit: "c" }), []);
  assert.deepEqual(validateValue(WEATHER, { city: 2, days: 0, unit: "k", where: { lat: "n" } }).sort(), [
    "$.city: expected string, got integer",
    "$.days: below 1",
    '$.unit: must be one of ["c","f"]',
    "$.where.lat: expected number, got string",
    '$.where: missing required "lon"',
  ]);
});

test("minCompletion is achievable: from random states, one character at a time lowers it by one until the call is complete", async () => {
  const { minCompletion } = await import("../../src/chat/json-budget.js");
  const start = CallRecognizer.start(grammar);
  // the shortest valid call names the one tool without required parameters
  assert.equal(minCompletion(start), callText("recommendation", {}).length);
  const alphabet = [...new Set([...ALPHABET, ..."defghijklmnopqrstuvwxyzAEIOU_"])];
  for (let seed = 1; seed <= 150; seed++) {
    const rand = rng(seed * 31);
    const m = CallRecognizer.start(grammar);
    const walk = Math.floor(rand() * 80);
    for (let i = 0; i < walk && !m.complete; i++) {
      const options = alphabet.filter((ch) => m.clone().feed(ch));
      m.feed(options[Math.floor(rand() * options.length)]);
    }
    let need = minCompletion(m);
    assert.ok(Number.isFinite(need), `seed ${seed}`);
    while (!m.complete) {
      const next = alphabet.find((ch) => {
        const c = m.clone();
        return c.feed(ch) && minCompletion(c) === need - 1;
      });
      assert.ok(next !== undefined, `seed ${seed}: no character brings ${need} down by one`);
      m.feed(next!);
      need--;
    }
    assert.equal(need, 0, `seed ${seed}`);
  }
});
