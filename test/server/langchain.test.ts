/**
 * LangChain.js (@langchain/openai 0.6 + @langchain/core 0.3, pinned; the 1.x line needs Node 22) as a third real
 * client on the embedded stories260K: withStructuredOutput (json_schema) replies validate with ajv, streaming text,
 * and bindTools with tool_choice required gives a parsed tool call.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ChatOpenAI } from "@langchain/openai";
import { Ajv } from "ajv";
import type { RunningServer } from "../../src/server/http.js";
import { startTestServer } from "./helpers.js";

const PERSON = {
  type: "object",
  properties: { name: { type: "string", maxLength: 12 }, age: { type: "integer" }, pets: { type: "array", items: { enum: ["cat", "dog"] }, maxItems: 2 } },
  required: ["name", "age", "pets"],
  additionalProperties: false,
};

describe("LangChain.js against xverse serve", () => {
  let srv: RunningServer;
  const llm = (opts: Record<string, unknown> = {}) => new ChatOpenAI({ model: "stories260K", apiKey: "unused", configuration: { baseURL: `${srv.url}/v1` }, maxRetries: 0, ...opts });
  before(async () => { srv = await startTestServer({ concurrency: 2 }); });
  after(() => srv.close());

  it("withStructuredOutput (jsonSchema): 6 sampled replies validate", async () => {
    const validate = new Ajv().compile(PERSON);
    for (let i = 0; i < 6; i++) {
      const structured = llm({ temperature: 1, maxTokens: 120 }).withStructuredOutput(PERSON, { method: "jsonSchema", name: "person" });
      const out = await structured.invoke("Describe a person.");
      assert.ok(validate(out), JSON.stringify(out));
    }
  });

  it("stream: chunks add up to the invoke reply (greedy)", async () => {
    const m = llm({ temperature: 0, maxTokens: 20 });
    let text = "";
    for await (const c of await m.stream("Tell me a story.")) text += c.content as string;
    const whole = await m.invoke("Tell me a story.");
    assert.ok(text.length > 0);
    assert.equal(text, whole.content);
  });

  it("bindTools with tool_choice required: a parsed tool call with valid arguments", async () => {
    const tool = { type: "function" as const, function: { name: "weather", description: "weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false } } };
    const m = llm({ temperature: 1, maxTokens: 90 }).bindTools([tool], { tool_choice: "required" });
    const r = await m.invoke("Weather in Paris?");
    assert.equal(r.tool_calls?.length, 1);
    assert.equal(r.tool_calls![0].name, "weather");
    assert.equal(typeof r.tool_calls![0].args.city, "string");
    assert.ok(!String(r.content).includes("startofthink"));
  });
});
