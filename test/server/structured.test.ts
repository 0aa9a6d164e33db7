/**
 * response_format through the official `openai` client, on stories260K and tiny-xverse (random weights): every
 * json_schema reply parses and validates (ajv as the oracle) over many seeds, streamed and not, while
 * unconstrained requests share the same batched decode steps; json_object replies always parse; a schema with
 * keywords the decoder cannot enforce is a 400 naming them. Also the forced-tool-call defect: a required call
 * finishes within max_tokens, and one cut anyway comes back as tool_calls with partial arguments.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Ajv } from "ajv";
import type OpenAI from "openai";
import type { RunningServer } from "../../src/server/http.js";
import { fixture } from "../helpers/peers.js";
import { openai, post, startTestServer } from "./helpers.js";

const ajv = new Ajv({ strict: false });

const RECIPE = {
  type: "object",
  $defs: { step: { type: "object", properties: { n: { type: "integer" }, text: { type: "string", maxLength: 20 } }, required: ["n", "text"], additionalProperties: false } },
  properties: {
    title: { type: "string", minLength: 1, maxLength: 24 },
    servings: { type: "integer" },
    vegan: { type: "boolean" },
    cuisine: { enum: ["thai", "french", "other"] },
    rating: { anyOf: [{ type: "number" }, { type: "null" }] },
    steps: { type: "array", items: { $ref: "#/$defs/step" }, minItems: 1, maxItems: 3 },
    note: { type: "string", maxLength: 10 },
  },
  required: ["title", "servings", "vegan", "cuisine", "rating", "steps"],
  additionalProperties: false,
};
const FORMAT = { type: "json_schema" as const, json_schema: { name: "recipe", schema: RECIPE, strict: true } };
const WEATHER = {
  type: "function" as const,
  function: { name: "weather", parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } }, required: ["city", "days"], additionalProperties: false } },
};

for (const [label, model] of [["stories260K", undefined], ["tiny-xverse", fixture("golden", "tiny-xverse")]] as const) {
  describe(`response_format on ${label} (openai client)`, () => {
    let srv: RunningServer;
    let client: OpenAI;
    const validate = ajv.compile(RECIPE);
    before(async () => {
      srv = await startTestServer({ model, concurrency: 4 });
      client = openai(srv);
    });
    after(() => srv.close());

    it("json_schema: 16 seeds, half streamed, batched with unconstrained requests: every reply validates", async () => {
      const messages = [{ role: "user" as const, content: "A recipe, please." }];
      const one = async (seed: number): Promise<string> => {
        const req = { model: "m", messages, response_format: FORMAT, max_tokens: 160, temperature: 1, seed };
        if (seed % 2) {
          const r = await client.chat.completions.create(req);
          assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
          return r.choices[0].message.content ?? "";
        }
        let text = "";
        for await (const c of await client.chat.completions.create({ ...req, stream: true })) text += c.choices[0]?.delta.content ?? "";
        return text;
      };
      const free = (seed: number) => client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Tell a story" }], max_tokens: 60, temperature: 1, seed });
      for (let round = 0; round < 4; round++) {
        const seeds = [1, 2, 3, 4].map((k) => round * 4 + k);
        const [plain, ...texts] = await Promise.all([free(round), ...seeds.map(one)]);
        assert.ok(typeof plain.choices[0].message.content === "string");
        texts.forEach((text, i) => {
          let v: unknown;
          assert.doesNotThrow(() => (v = JSON.parse(text)), `seed ${seeds[i]}: ${text}`);
          assert.ok(validate(v), `seed ${seeds[i]}: ${text}: ${ajv.errorsText(validate.errors)}`);
        });
      }
      assert.ok(srv.scheduler.stats().concurrency >= 4);
    });

    it("tool_choice required: the call closes within max_tokens whenever its shortest form fits (12 seeds), markup never in content", async () => {
      // the shortest call, <|startofthink|>```JSON\n{"api_name":"weather","parameters":{"city":"","days":0}}```<|endofthink|>,
      // is 81 pieces on stories260K and 63 on tiny-xverse; the context leaves 80 / 64 tokens after the tool prompt
      const tight = label === "stories260K" ? 100 : 64;
      for (let seed = 1; seed <= 12; seed++) {
        const max = tight + (seed % 3) * 8;
        const r = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "weather?" }], tools: [WEATHER], tool_choice: "required", max_tokens: max, temperature: 1, seed });
        const c = r.choices[0];
        assert.equal(c.finish_reason, "tool_calls", `seed ${seed}: ${JSON.stringify(c.message)}`);
        assert.ok(r.usage!.completion_tokens <= max);
        const call = c.message.tool_calls![0];
        assert.ok(call.type === "function");
        assert.equal(call.function.name, "weather");
        const args = JSON.parse(call.function.arguments);
        assert.equal(typeof args.city, "string");
        assert.ok(Number.isInteger(args.days));
        assert.ok(!(c.message.content ?? "").includes("startofthink"));
      }
    });

    it("json_object: replies are JSON objects (greedy and sampled, streamed)", async () => {
      for (const seed of [1, 2, 3, 4]) {
        let text = "";
        const stream = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "json" }], response_format: { type: "json_object" }, max_tokens: 48, temperature: seed === 1 ? 0 : 1, seed, stream: true });
        for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
        const v = JSON.parse(text);
        assert.ok(v && typeof v === "object" && !Array.isArray(v), text);
      }
    });
  });
}

describe("response_format errors and forced tool calls (stories260K)", () => {
  let srv: RunningServer;
  let client: OpenAI;
  before(async () => {
    srv = await startTestServer();
    client = openai(srv);
  });
  after(() => srv.close());

  it("unsupported schema keywords are a 400 naming each one and where it is", async () => {
    const schema = { type: "object", properties: { age: { type: "integer", minimum: 18 }, mail: { type: "string", format: "email" } }, required: ["age"] };
    const r = await post(srv, "/v1/chat/completions", { messages: [{ role: "user", content: "x" }], response_format: { type: "json_schema", json_schema: { name: "p", schema } } });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.param, "response_format.json_schema.schema");
    assert.match(r.json.error.message, /#\/properties\/age: "minimum": 18 is not supported/);
    assert.match(r.json.error.message, /#\/properties\/mail: "format" is not supported/);
    const bad = await post(srv, "/v1/chat/completions", { messages: [{ role: "user", content: "x" }], response_format: { type: "xml" } });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, "response_format.type");
    const noName = await post(srv, "/v1/chat/completions", { messages: [{ role: "user", content: "x" }], response_format: { type: "json_schema", json_schema: { schema: RECIPE } } });
    assert.equal(noName.status, 400);
    assert.equal(noName.json.error.param, "response_format.json_schema.name");
    const mixed = await post(srv, "/v1/chat/completions", { messages: [{ role: "user", content: "x" }], tools: [WEATHER], response_format: { type: "json_object" } });
    assert.equal(mixed.status, 400);
    assert.match(mixed.json.error.message, /tool_choice "none"/);
  });

  it("a call cut by a max_tokens below its shortest form (81 tokens here): tool_calls with the partial arguments, finish_reason length", async () => {
    // 80: the Vercel AI SDK case (the decoder heads for the end, so the arguments are whole, the end marker cut)
    for (const [stream, max] of [[false, 12], [true, 12], [false, 80], [true, 80]] as const) {
      const req = { model: "m", messages: [{ role: "user" as const, content: "weather?" }], tools: [WEATHER], tool_choice: "required" as const, max_tokens: max, temperature: 0 };
      let name = "", args = "", content = "", finish: string | null = null;
      if (!stream) {
        const r = await client.chat.completions.create(req);
        const c = r.choices[0];
        finish = c.finish_reason;
        content = c.message.content ?? "";
        const call = c.message.tool_calls![0];
        assert.ok(call.type === "function");
        name = call.function.name;
        args = call.function.arguments;
      } else {
        for await (const ch of await client.chat.completions.create({ ...req, stream: true })) {
          const c = ch.choices[0];
          if (!c) continue;
          content += c.delta.content ?? "";
          for (const tc of c.delta.tool_calls ?? []) { name += tc.function?.name ?? ""; args += tc.function?.arguments ?? ""; }
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
      assert.equal(finish, "length");
      assert.equal(name, "weather", "the only tool a partial name can be");
      assert.ok(!content.includes("startofthink") && !content.includes("JSON"), content);
      if (max === 12) assert.equal(args, "", "cut inside the call's head: no arguments yet");
      else assert.deepEqual(Object.keys(JSON.parse(args)).sort(), ["city", "days"], args);
    }
  });
});
