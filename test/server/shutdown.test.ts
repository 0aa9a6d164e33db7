/**
 * Graceful stop and per-request timeouts. SIGTERM to `xverse serve`: a stream in flight finishes normally (its
 * finish_reason and [DONE] arrive), new connections are refused, the process exits 0. --request-timeout: a running
 * generation is cut with finish_reason "length"; one still waiting is a 504 (or, if it got the slot just before its
 * deadline, cut the same way).
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { describe, it } from "node:test";
import { repoRoot } from "../helpers/peers.js";
import { post, startTestServer } from "./helpers.js";

async function waitFor(f: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("graceful SIGTERM (CLI)", () => {
  it("finishes the running stream, refuses new connections, exits 0", async () => {
    const child = spawn(process.execPath, [join(repoRoot, "bin", "xverse.js"), "serve", "--port", "0", "--backend", "ts", "--shutdown-timeout", "20"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    await waitFor(() => /listening on (http:\/\/\S+)/.test(out));
    const url = /listening on (http:\/\/\S+)/.exec(out)![1];
    const res = await fetch(`${url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 300, ignore_eos: true, stream: true }) });
    const reader = res.body!.getReader();
    let text = Buffer.from((await reader.read()).value!).toString();
    child.kill("SIGTERM");
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    assert.match(text, /"finish_reason":"length"/, "the stream ran to its end");
    assert.match(text, /data: \[DONE\]\n\n$/);
    const late = await fetch(`${url}/health`).then((r) => r.status, () => "refused");
    assert.ok(late === "refused" || late === 503, String(late));
    const [code] = await once(child, "exit");
    assert.equal(code, 0, err);
    assert.match(err, /shutting down/);
  });
});

describe("--request-timeout", () => {
  it("cuts a running generation with finish_reason length; a waiting one gets 504 or is cut", async () => {
    const srv = await startTestServer({ concurrency: 1, requestTimeoutMs: 400, load: { backend: "ts" } });
    try {
      const long = { prompt: "Once upon a time", max_tokens: 500, ignore_eos: true, temperature: 0 };
      const t0 = Date.now();
      const [a, b] = await Promise.all([post(srv, "/v1/completions", long), post(srv, "/v1/completions", long)]);
      assert.equal(a.status, 200, a.text);
      assert.equal(a.json.choices[0].finish_reason, "length");
      assert.ok(a.json.usage.completion_tokens < 500, `cut early: ${a.json.usage.completion_tokens}`);
      assert.ok(Date.now() - t0 < 5000);
      if (b.status === 504) assert.equal(b.json.error.code, "timeout");
      else {
        assert.equal(b.status, 200);
        assert.ok(b.json.usage.completion_tokens < 500);
      }
      const c = await post(srv, "/v1/completions", { prompt: "x", max_tokens: 2 });
      assert.equal(c.status, 200, "serving after timeouts");
    } finally {
      await srv.close();
    }
  });
});
