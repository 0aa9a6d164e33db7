/**
 * The Vercel AI SDK (ai 5 + @ai-sdk/openai-compatible 1, pinned) as a second real client, on the embedded
 * stories260K: generateObject with a zod schema (sent as response_format json_schema; the SDK validates the
 * reply itself), streamText, a forced tool call within 80 output tokens (the failing case), toolChoice
 * auto, and a two-step tool round trip.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateObject, generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import type { RunningServer } from "../../src/server/http.js";
import { startTestServer } from "./helpers.js";

describe("Vercel AI SDK against xverse serve", () => {
  let srv: RunningServer;
  let model: ReturnType<ReturnType<typeof createOpenAICompatible>["chatModel"]>;
  before(async () => {
    srv = await startTestServer({ concurrency: 2 });
    model = createOpenAICompatible({ name: "xverse", baseURL: `${srv.url}/v1`, supportsStructuredOutputs: true }).chatModel("stories260K");
  });
  after(() => srv.close());

  // the SDK's own JSON-schema wrapper for tools (its zod typings pin one provider-utils copy; the wire format is the same)
  const cityInput = jsonSchema<{ city: string }>({ type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false });
  const weather = () => tool({ description: "current weather in a city", inputSchema: cityInput });
  const weatherRun = (execute: (a: { city: string }) => Promise<{ city: string; celsius: number }>) =>
    tool({ description: "current weather in a city", inputSchema: cityInput, execute });

  it("generateObject with a zod schema: 6 seeds, each a valid object", async () => {
    const schema = z.object({
      name: z.string().max(16),
      age: z.number().int(),
      mood: z.enum(["happy", "sad", "sleepy"]),
      friends: z.array(z.object({ name: z.string().max(10), close: z.boolean() })).max(2),
      nickname: z.string().max(8).nullable(),
    });
    for (let seed = 1; seed <= 6; seed++) {
      const { object } = await generateObject({ model, schema, prompt: "Describe a character.", maxOutputTokens: 200, temperature: 1, seed, maxRetries: 0 });
      assert.deepEqual(schema.parse(object), object);
    }
  });

  it("streamText: the deltas add up to the text", async () => {
    const r = streamText({ model, prompt: "Tell me a story.", maxOutputTokens: 30, temperature: 0, maxRetries: 0 });
    let text = "";
    for await (const d of r.textStream) text += d;
    assert.ok(text.length > 0);
    assert.equal(text, await r.text);
  });

  it("toolChoice required with maxOutputTokens 80: a complete call, never markup in the text (8 seeds)", async () => {
    for (let seed = 1; seed <= 8; seed++) {
      const r = await generateText({ model, tools: { weather: weather() }, toolChoice: "required", prompt: "What is the weather in Paris?", maxOutputTokens: 80, temperature: 1, seed, maxRetries: 0 });
      assert.equal(r.finishReason, "tool-calls", `seed ${seed}: ${r.text}`);
      assert.equal(r.toolCalls.length, 1);
      assert.equal(r.toolCalls[0].toolName, "weather");
      assert.equal(typeof (r.toolCalls[0].input as { city: unknown }).city, "string");
      assert.ok(!r.text.includes("startofthink"), r.text);
    }
  });

  it("toolChoice auto answers (text or a valid call); a two-step round trip feeds the result back", async () => {
    const auto = await generateText({ model, tools: { weather: weather() }, toolChoice: "auto", prompt: "Hi", maxOutputTokens: 20, temperature: 0, maxRetries: 0 });
    assert.ok(["stop", "length", "tool-calls"].includes(auto.finishReason));
    assert.ok(!auto.text.includes("startofthink"));
    let ran = 0;
    const r = await generateText({
      model, tools: { weather: weatherRun(async ({ city }) => { ran++; return { city, celsius: 21 }; }) },
      prompt: "What is the weather in Paris?", maxOutputTokens: 90, temperature: 0, maxRetries: 0,
      stopWhen: stepCountIs(2),
      // call on the first step, answer in words on the second
      prepareStep: ({ stepNumber }) => ({ toolChoice: stepNumber === 0 ? "required" : "none" }),
    });
    assert.equal(ran, 1);
    assert.equal(r.steps.length, 2);
    assert.equal(r.steps[0].toolCalls.length, 1);
    assert.equal(r.steps[1].toolCalls.length, 0);
    assert.ok(r.steps[1].text.length > 0);
  });
});
