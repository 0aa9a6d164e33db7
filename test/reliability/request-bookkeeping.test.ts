/**
 * Issue 17 (soak RSS drift): nothing the server keeps per request outlives the request. After a mix of finished,
 * hung-up, queued-then-cancelled, timed-out, refused and failed requests, every per-request structure is back to
 * its idle count: the scheduler's queue, active map and tool replies, the metrics' timing table, the worker's
 * abort controllers and decode rows, the KV blocks held, this process's listeners and timers. The counts are
 * checked to rise first, so a counter that never moves cannot pass.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { post, raw, startTestServer } from "../server/helpers.js";
import type { RunningServer } from "../../src/server/http.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Timers and handles of this process by type (the test server runs its HTTP side here). */
function resources(): Record<string, number> {
  const n: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) n[r] = (n[r] ?? 0) + 1;
  return n;
}

function listeners(): Record<string, number> {
  return Object.fromEntries(process.eventNames().map((e) => [String(e), process.listenerCount(e)]));
}

/** Polls until `ok` (the worker reports every second), or fails with the last value seen. */
async function until<T>(what: string, read: () => T, ok: (v: T) => boolean, ms = 6000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = read();
    if (ok(v)) return v;
    if (Date.now() > end) assert.fail(`${what}: still ${JSON.stringify(v)} after ${ms} ms`);
    await sleep(50);
  }
}

/** A streaming chat read for `chunks` events, then hung up (or read to the end when chunks is Infinity). */
async function stream(srv: RunningServer, body: object, chunks: number): Promise<number> {
  const ac = new AbortController();
  const res = await fetch(`${srv.url}/v1/chat/completions`, {
    method: "POST", headers: { "Content-Type": "application/json" }, signal: ac.signal,
    body: JSON.stringify({ stream: true, messages: [{ role: "user", content: "Tell me a story." }], ...body }),
  });
  if (!res.ok) return res.status;
  const reader = res.body!.getReader();
  let seen = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return res.status;
      seen += new TextDecoder().decode(value).split("\n\n").filter((e) => e.startsWith("data: {")).length;
      if (seen >= chunks) { ac.abort(); return 499; }
    }
  } catch {
    return 499;
  }
}

// (a timeout: a failed check must not leave the busy loops below running forever)
test("per-request bookkeeping returns to its idle counts after finished, aborted, queued and failed requests", { timeout: 120_000 }, async (t) => {
  const srv = await startTestServer({ concurrency: 2, bodyTimeoutMs: 300, requestTimeoutMs: 1500 });
  const sched = srv.scheduler;
  // the busy loops run until this is set: on the way out too, when a check fails while they run
  let stop = false;
  try {
    // idle baseline, after one request so lazy one-time state (JIT, parser pools, piece tables) exists
    assert.equal((await post(srv, "/v1/completions", { prompt: "Once", max_tokens: 2 })).status, 200);
    await until("worker idle", () => sched.workerMemory.jobs, (n) => n === 0);
    const res0 = resources(), lis0 = listeners();

    // long streams, one after another, keep both slots busy: the counts must rise while they run
    const long = { max_tokens: 100_000, ignore_eos: true };
    // (a POST on a pooled keep-alive socket can fail before any answer, rarely, when the socket closes under it; the
    // loops only keep the slots busy, so such a try is noted and the loop goes on instead of failing the test)
    const lost: string[] = [];
    const loops = [0, 1].map(async () => {
      const st: number[] = [];
      while (!stop) st.push(await stream(srv, long, Infinity).catch((e: Error) => { lost.push(`${e.message}: ${String(e.cause)}`); return 0; }));
      return st;
    });
    const busy = await until("worker busy", () => ({ ...sched.workerMemory }), (m) => m.jobs >= 1 && m.decoding >= 1);
    assert.ok(busy.jobs >= 1 && busy.decoding >= 1);
    // (polled: the worker's report above may be a second old, and a long stream can end — cut by --request-timeout —
    // in between, before its loop starts the next)
    await until("the metrics time the running jobs", () => sched.bookkeeping().metricJobs, (n) => n >= 1);
    // behind them: two hang up while queued, one hangs up after its first chunk, one reads to the end, and one
    // waits past --request-timeout when the slots stay busy (504 queued, or cut with "length" running)
    const hangUp = async (ms: number) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), ms);
      return fetch(`${srv.url}/v1/completions`, { method: "POST", signal: ac.signal, headers: { "Content-Type": "application/json" }, body: '{"prompt": "Once", "max_tokens": 50}' })
        .then(async (r) => { await r.text(); return r.status; }, () => 499);
    };
    const queued = [hangUp(30), hangUp(60), stream(srv, long, 1), stream(srv, { max_tokens: 3 }, Infinity), post(srv, "/v1/completions", { prompt: "Once", max_tokens: 5 }).then((r) => r.status)];
    const mixed = await Promise.all([
      ...queued,
      post(srv, "/v1/chat/completions", '{"messages": [').then((r) => r.status),
      post(srv, "/v1/chat/completions", { messages: [{ role: "user", content: "hi" }], logit_bias: { "999999": 1 } }).then((r) => r.status),
      post(srv, "/tokenize", { content: "Once upon a time" }).then((r) => r.status),
      post(srv, "/detokenize", { tokens: [999999] }).then((r) => r.status),
      raw(srv, "/health").then((r) => r.status),
    ]);
    stop = true;
    mixed.push(...(await Promise.all(loops)).flat());
    if (lost.length) t.diagnostic(`connection-level failures in the busy loops: ${lost.join("; ")}`);
    // the statuses show each path was taken: hang-ups (499 = we cut), 400s, 200s
    assert.ok(mixed.includes(499) && mixed.includes(400) && mixed.includes(200), JSON.stringify(mixed));
    // three that read to the end and three cut after their first chunk; the cut ones ask for far more tokens than
    // --request-timeout allows, so the hang-up always lands mid-generation (8 tokens could finish first on a slow
    // machine, and an end that wins the race counts as completed, not aborted)
    for (let i = 0; i < 6; i++) await stream(srv, i % 2 ? long : { max_tokens: 8 }, i % 2 ? 1 : Infinity);

    await until("scheduler idle", () => sched.bookkeeping(), (b) => b.queued + b.active + b.tools + b.metricJobs === 0);
    const w = await until("worker idle", () => sched.workerMemory, (m) => m.jobs === 0 && m.decoding === 0);
    assert.deepEqual({ jobs: w.jobs, decoding: w.decoding }, { jobs: 0, decoding: 0 });
    assert.deepEqual(sched.bookkeeping(), { queued: 0, active: 0, tools: 0, metricJobs: 0 });
    assert.equal(sched.kvUse.usedBlocks, 0, "no KV block held by a finished request");
    const s = sched.stats();
    assert.ok(s.aborted >= 3 && s.completed >= 6, JSON.stringify(s));
    // keep-alive sockets of the fetch client may linger; the server's own timers and listeners may not
    await sleep(100);
    const res1 = resources();
    assert.equal(res1.Timeout ?? 0, res0.Timeout ?? 0, `timers: ${JSON.stringify(res0)} → ${JSON.stringify(res1)}`);
    assert.deepEqual(listeners(), lis0);
  } finally {
    stop = true;
    await srv.close();
  }
});
