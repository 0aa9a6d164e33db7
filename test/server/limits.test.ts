/**
 * Server limits: --max-queue turns away the request that would wait beyond it with 429 + Retry-After (and serves
 * again once the queue drains); CORS headers only for the origins --cors names (none by default).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { post, raw, startTestServer } from "./helpers.js";

const long = { prompt: "Once upon a time", max_tokens: 500, ignore_eos: true, temperature: 0 };

describe("server limits", () => {
  it("--max-queue 1: one generating, one waiting, the next gets 429 with Retry-After; afterwards requests pass", async () => {
    const srv = await startTestServer({ concurrency: 1, maxQueue: 1 });
    try {
      const ac = new AbortController();
      // A generates (its first streamed bytes prove it holds the slot), B waits in the queue
      const a = await fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...long, stream: true }), signal: ac.signal });
      const reader = a.body!.getReader();
      await reader.read();
      const b = fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(long), signal: ac.signal }).catch(() => null);
      for (let i = 0; i < 100 && srv.scheduler.stats().queued < 1; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(srv.scheduler.stats().queued, 1);
      const c = await post(srv, "/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], max_tokens: 4 });
      assert.equal(c.status, 429, c.text);
      assert.equal(c.json.error.code, "queue_full");
      assert.match(c.json.error.message, /--max-queue 1/);
      assert.ok(Number(c.headers.get("retry-after")) >= 1);
      ac.abort();
      await b;
      for (let i = 0; i < 200 && (srv.scheduler.stats().active || srv.scheduler.stats().queued); i++) await new Promise((r) => setTimeout(r, 10));
      const d = await post(srv, "/v1/completions", { prompt: "x", max_tokens: 2 });
      assert.equal(d.status, 200, d.text);
    } finally {
      await srv.close();
    }
  });

  it("CORS: no headers by default; --cors ORIGIN answers only that origin; * any", async () => {
    const get = async (srv: Awaited<ReturnType<typeof startTestServer>>, origin: string) =>
      (await raw(srv, "/v1/models", { method: "OPTIONS", headers: { Origin: origin } })).headers.get("access-control-allow-origin");
    const plain = await startTestServer({ concurrency: 1 });
    try {
      assert.equal(await get(plain, "http://a.example"), null);
    } finally {
      await plain.close();
    }
    const one = await startTestServer({ concurrency: 1, cors: ["http://a.example"] });
    try {
      assert.equal(await get(one, "http://a.example"), "http://a.example");
      assert.equal(await get(one, "http://b.example"), null);
      const r = await raw(one, "/v1/models", { headers: { Origin: "http://a.example" } });
      assert.equal(r.headers.get("access-control-allow-origin"), "http://a.example");
      assert.equal(r.headers.get("vary"), "Origin");
    } finally {
      await one.close();
    }
    const any = await startTestServer({ concurrency: 1, cors: ["*"] });
    try {
      assert.equal(await get(any, "http://b.example"), "*");
    } finally {
      await any.close();
    }
  });
});
