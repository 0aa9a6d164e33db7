/**
 * `xverse generate --endpoint` and `xverse chat --endpoint` against a running `xverse serve` (in-process, on the
 * embedded model): the real binary prints what the server's API returns for the same request, the REPL keeps its
 * commands (/save writes the XVERSE history), and a dead endpoint is a one-line error. toOpenAIMessages maps
 * XVERSE history (exec turns, call markup) to OpenAI messages.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { toOpenAIMessages } from "../../src/chat/remote.js";
import { formatToolCall } from "../../src/chat/tools.js";
import type { RunningServer } from "../../src/server/http.js";
import { repoRoot } from "../helpers/peers.js";
import { post, startTestServer } from "../server/helpers.js";

function run(args: string[], stdin = ""): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot, "bin", "xverse.js"), ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe("--endpoint (remote chat / generate)", () => {
  let srv: RunningServer;
  before(async () => { srv = await startTestServer({ concurrency: 2, apiKey: "sekret" }); });
  after(() => srv.close());
  const auth = { Authorization: "Bearer sekret" };

  it("generate --endpoint prints exactly the server's completion", async () => {
    const r = await run(["generate", "--endpoint", srv.url, "--api-key", "sekret", "--greedy", "--max-new-tokens", "12", "--quiet", "Once upon a time"]);
    assert.equal(r.code, 0, r.stderr);
    const api = await post(srv, "/v1/completions", { prompt: "Once upon a time", max_tokens: 12, temperature: 0 }, auth);
    assert.equal(r.stdout, api.json.choices[0].text);
    assert.ok(r.stdout.startsWith(", there was a little girl"), r.stdout);
  });

  it("chat --endpoint: the reply equals the API's, /save writes the history, /exit leaves", async () => {
    const dir = mkdtempSync(join(tmpdir(), "xverse-remote-"));
    const file = join(dir, "chat.json");
    const r = await run(["chat", "--endpoint", `${srv.url}/v1`, "--api-key", "sekret", "--greedy", "--max-new-tokens", "16", "--quiet"], `Hello\n/save ${file}\n/exit\n`);
    assert.equal(r.code, 0, r.stderr);
    const api = await post(srv, "/v1/chat/completions", { messages: [{ role: "user", content: "Hello" }], max_tokens: 16, temperature: 0 }, auth);
    assert.equal(r.stdout, api.json.choices[0].message.content + "\n");
    assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), [{ role: "user", content: "Hello" }, { role: "assistant", content: api.json.choices[0].message.content }]);
  });

  it("a wrong key or a dead endpoint is a one-line error naming the URL", async () => {
    const bad = await run(["generate", "--endpoint", srv.url, "--api-key", "nope", "--max-new-tokens", "2", "x"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /answered 401: .*--api-key/);
    const dead = await run(["chat", "--endpoint", "http://127.0.0.1:9", "--quiet"], "hi\n");
    assert.equal(dead.code, 1);
    assert.match(dead.stderr, /cannot reach http:\/\/127\.0\.0\.1:9\/v1\/models/);
    assert.doesNotMatch(dead.stderr, /\n\s+at /);
  });
});

it("toOpenAIMessages: exec turns answer the last call; call markup becomes tool_calls", () => {
  const history = [
    { role: "user" as const, content: "weather in Paris?" },
    { role: "assistant" as const, content: "Let me check." + formatToolCall("weather", { city: "Paris" }) },
    { role: "exec" as const, content: '{"c": 21}' },
    { role: "assistant" as const, content: "21 degrees." },
  ];
  assert.deepEqual(toOpenAIMessages(history, "be brief"), [
    { role: "system", content: "be brief" },
    { role: "user", content: "weather in Paris?" },
    { role: "assistant", content: "Let me check.", tool_calls: [{ id: "call_1", type: "function", function: { name: "weather", arguments: '{"city":"Paris"}' } }] },
    { role: "tool", tool_call_id: "call_1", content: '{"c": 21}' },
    { role: "assistant", content: "21 degrees." },
  ]);
});
