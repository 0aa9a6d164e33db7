import { test } from "node:test";
import assert from "node:assert/strict";
import { parseToolCall, ToolCallStream, type ParsedReply } from "../../src/chat/parse.js";
import { HOTEL_ARGS, HOTEL_REPLY } from "./readme-fixtures.js";

const README_TEXT = "好的，我会为您查询符合条件的酒店。请稍等片刻";

test("the README's hotel_search reply parses to the call and the text before it", () => {
  const r = parseToolCall(HOTEL_REPLY);
  assert.deepEqual(r, { text: README_TEXT, call: { name: "hotel_search", arguments: HOTEL_ARGS } });
});

test("fence optional, json/JSON tag, surrounding whitespace, url kept, text after the call", () => {
  const body = '{"api_name":"f","url":"http://x","parameters":{"a":1}}';
  for (const inner of [body, `\`\`\`JSON\n${body}\n\`\`\``, `  \n\`\`\`json ${body}\`\`\`\n `, `\`\`\`\n${body}\`\`\``, `\n\t${body}\n`]) {
    const r = parseToolCall(`hi <|startofthink|>${inner}<|endofthink|> bye`);
    assert.deepEqual(r, { text: "hi", call: { name: "f", arguments: { a: 1 }, url: "http://x" }, after: " bye" }, inner);
  }
});

test("no marker: the whole reply is text, no call, no error", () => {
  assert.deepEqual(parseToolCall("just words\n"), { text: "just words\n", call: null });
});

test("malformed calls give a 'not a valid call' result, never an exception", () => {
  const cases = [
    "<|startofthink|>```JSON\n{\"api_name\": \"hotel_search\", \"parameters\": {\"city\": }```<|endofthink|>",
    "<|startofthink|>[1,2]<|endofthink|>",
    "<|startofthink|>{\"parameters\": {}}<|endofthink|>",
    "<|startofthink|>{\"api_name\": \"f\", \"parameters\": [1]}<|endofthink|>",
    "<|startofthink|>{\"api_name\": \"f\", \"parameters\": \"{bad\"}<|endofthink|>",
    "<|startofthink|><|endofthink|>",
    "<|startofthink|>```JSON\n{\"api_name\": \"f\", \"para",
  ];
  for (const c of cases) {
    const r = parseToolCall("x" + c);
    assert.equal(r.call, null, c);
    assert.equal(r.text, "x");
    assert.match(r.error ?? "", /^not a valid call: /, c);
  }
});

test("parameters given as a JSON string, and a complete call missing only its end marker, still parse", () => {
  assert.deepEqual(parseToolCall('<|startofthink|>{"api_name":"f","parameters":"{\\"a\\":[1]}"}<|endofthink|>').call, { name: "f", arguments: { a: [1] } });
  assert.deepEqual(parseToolCall('ok<|startofthink|>```JSON\n{"api_name":"f","parameters":{}}```').call, { name: "f", arguments: {} });
});

function streamed(parts: string[]): { shown: string; calls: ParsedReply[]; final: ParsedReply } {
  const s = new ToolCallStream();
  let shown = "";
  const calls: ParsedReply[] = [];
  for (const p of parts) {
    const r = s.push(p);
    shown += r.text;
    if (r.call) calls.push(r.call);
  }
  shown += s.pending();
  return { shown, calls, final: s.end() };
}

test("streamed: split at every character boundary (two deltas, and one delta per character) → same result", () => {
  for (const reply of [HOTEL_REPLY, HOTEL_REPLY + "\n之后", "a<|startofthink|>{bad}<|endofthink|>", "<<|startofthink|>{\"api_name\":\"f\"}<|endofthink|>", "no call <|startoft"]) {
    const whole = parseToolCall(reply);
    const before = reply.includes("<|startofthink|>") ? reply.slice(0, reply.indexOf("<|startofthink|>")) : reply;
    const complete = reply.includes("<|endofthink|>");
    const splits: string[][] = [[...reply]];
    for (let i = 0; i <= reply.length; i++) splits.push([reply.slice(0, i), reply.slice(i)]);
    for (const parts of splits) {
      const r = streamed(parts);
      assert.deepEqual(r.final, whole);
      assert.equal(r.shown, before, JSON.stringify(parts.slice(0, 2)));
      assert.equal(r.calls.length, complete ? 1 : 0);
      // the call is reported when its end marker arrives, before any text after it
      if (complete) assert.deepEqual({ ...r.calls[0], after: undefined }, { ...whole, after: undefined });
    }
  }
});

test("streamed: text before the marker is shown as it arrives, a possible marker start is held back", () => {
  const s = new ToolCallStream();
  assert.equal(s.push("Hello <|start").text, "Hello ");
  assert.equal(s.push("of").text, "");
  assert.equal(s.push("X").text, "<|startofX");
});
