/**
 * Scheduling: generation runs in the worker, so /health stays fast mid-generation; requests beyond the
 * concurrency wait in FIFO order; a client that disconnects mid-stream stops its generation and frees its slot.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { RunningServer } from "../../src/server/http.js";
import { post, raw, startTestServer } from "./helpers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LONG = { model: "m", prompt: "Once upon a time", max_tokens: 500, ignore_eos: true, temperature: 0 };

async function health(srv: RunningServer): Promise<{ ms: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const t0 = performance.now();
  const r = await raw(srv, "/health");
  return { ms: performance.now() - t0, body: r.json };
}

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(10);
  }
  assert.fail("condition not reached in time");
}

/** Waits until nothing runs or waits, so one test's requests cannot leak into the next one's counts. */
async function idle(srv: RunningServer): Promise<void> {
  await waitFor(async () => {
    const h = (await health(srv)).body;
    return h.active === 0 && h.queued === 0;
  }, 20_000);
}

describe("scheduling", () => {
  let srv: RunningServer;
  before(async () => { srv = await startTestServer({ concurrency: 1 }); });
  after(() => srv.close());

  it("/health answers in < 50 ms while generations run", async () => {
    let stop = false;
    // keep the worker busy for the whole measurement: back-to-back long streaming generations
    const load = (async () => {
      while (!stop) {
        const res = await fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...LONG, stream: true }) });
        await res.text();
      }
    })();
    await waitFor(async () => (await health(srv)).body.active === 1);
    const times: number[] = [];
    let busy = 0;
    for (let i = 0; i < 25; i++) {
      const h = await health(srv);
      times.push(h.ms);
      if (h.body.active > 0) busy++;
      await sleep(5);
    }
    stop = true;
    await load;
    times.sort((a, b) => a - b);
    const median = times[times.length >> 1];
    assert.ok(busy >= 20, `generation was running during the measurements (${busy}/25)`);
    assert.ok(median < 50, `median /health ${median.toFixed(1)} ms (all: ${times.map((t) => t.toFixed(1)).join(", ")})`);
  });

  it("requests beyond the concurrency wait in FIFO order", async () => {
    await idle(srv);
    const order: number[] = [];
    const send = (i: number) => post(srv, "/v1/completions", { ...LONG, max_tokens: i === 0 ? 500 : 50 }).then((r) => {
      assert.equal(r.status, 200);
      order.push(i);
    });
    // arrival order 0, 1, 2, each sent once the server has seen the one before
    const reqs = [send(0)];
    await waitFor(async () => (await health(srv)).body.active === 1);
    reqs.push(send(1));
    await waitFor(async () => (await health(srv)).body.queued === 1);
    reqs.push(send(2));
    await waitFor(async () => (await health(srv)).body.queued === 2);
    await Promise.all(reqs);
    assert.deepEqual(order, [0, 1, 2]);
  });

  it("a client that disconnects mid-stream stops its generation and frees the slot", async () => {
    await idle(srv);
    const before = (await health(srv)).body;
    const ac = new AbortController();
    const res = await fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...LONG, stream: true }), signal: ac.signal });
    const reader = res.body!.getReader();
    await reader.read(); // the first chunk: generation is under way
    ac.abort();
    await waitFor(async () => (await health(srv)).body.active === 0);
    const h = (await health(srv)).body;
    assert.equal(h.aborted, before.aborted + 1, "the worker reported the generation as aborted, not finished");
    assert.equal(h.completed, before.completed);
    // the freed slot serves the next request at once
    const r = await post(srv, "/v1/completions", { model: "m", prompt: "Once", max_tokens: 4, temperature: 0 });
    assert.equal(r.status, 200);
  });

  it("a client that gives up while queued is dropped from the queue", async () => {
    await idle(srv);
    const running = post(srv, "/v1/completions", { ...LONG, max_tokens: 400 });
    await waitFor(async () => (await health(srv)).body.active === 1);
    const ac = new AbortController();
    const queued = fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(LONG), signal: ac.signal }).catch(() => null);
    await waitFor(async () => (await health(srv)).body.queued === 1);
    ac.abort();
    await queued;
    await waitFor(async () => (await health(srv)).body.queued === 0);
    assert.equal((await running).status, 200);
  });
});

describe("xverse serve (CLI)", () => {
  it("prints its address, serves, and exits cleanly on SIGTERM", async () => {
    const bin = join(dirname(fileURLToPath(import.meta.url)), "../../../bin/xverse.js");
    const child = spawn(process.execPath, [bin, "serve", "--port", "0", "--concurrency", "2"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    await waitFor(async () => /listening on (http:\/\/\S+)/.test(out), 20_000);
    const url = /listening on (http:\/\/\S+)/.exec(out)![1];
    const r = await fetch(`${url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "Hi" }], max_tokens: 3 }) });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { object: string }).object, "chat.completion");
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
  });
});

describe("worker crash", () => {
  let srv: RunningServer;
  before(async () => { srv = await startTestServer({ concurrency: 2 }); });
  after(() => srv.close());

  it("fails the requests in flight with an error, restarts the worker, and keeps serving", async () => {
    const res = await fetch(`${srv.url}/v1/completions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...LONG, stream: true }) });
    const reader = res.body!.getReader();
    await reader.read();
    // simulate a crash (out of memory, a native fault): the worker thread dies mid-generation
    await (srv.scheduler as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    let text = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
    assert.match(text, /"code":"worker_crashed"/);
    assert.match(text, /data: \[DONE\]/);
    await waitFor(async () => (await raw(srv, "/health")).status === 200);
    const r = await post(srv, "/v1/completions", { model: "m", prompt: "Once", max_tokens: 4, temperature: 0 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal((await health(srv)).body.failed, 1);
  });
});
