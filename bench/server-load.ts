/**
 * Load test for `xverse serve` (npm run bench:load): N concurrent streaming clients on loopback for a while,
 * a quarter of them hanging up mid-stream on every request. Prints server errors (must be 0), completed and
 * cut streams, throughput, latency percentiles (time to first token and total, p50/p90/p99) and the server's
 * RSS before, at peak and after (should return near its baseline once the clients are gone).
 * Not a test: it reports, and exits 1 only on server errors or a stream that should have completed and did not.
 *
 *   node dist/bench/server-load.js [--seconds 60] [--clients 32] [--concurrency 4] [--max-tokens 128] [--model DIR]
 *                                  [--threads N] [--semi-space MB] [--url URL (an already running server)]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values: v } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    clients: { type: "string", default: "32" },
    concurrency: { type: "string", default: "4" },
    "max-tokens": { type: "string", default: "128" },
    model: { type: "string" },
    threads: { type: "string" },
    "semi-space": { type: "string" },
    url: { type: "string" },
  },
});
const SECONDS = Number(v.seconds), CLIENTS = Number(v.clients), MAX_TOKENS = Number(v["max-tokens"]);
const DISCONNECTERS = Math.round(CLIENTS / 4);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Health { active: number; queued: number; failed: number; completed: number; aborted: number; rss: number; heap_used: number; heap_total: number; worker_heap_used: number; worker_heap_total: number; max_batch: number }

async function startServer(): Promise<{ url: string; child: ChildProcess | null; stderr: () => string }> {
  if (v.url) return { url: v.url.replace(/\/+$/, ""), child: null, stderr: () => "" };
  const bin = join(dirname(fileURLToPath(import.meta.url)), "../../bin/xverse.js");
  // --semi-space MB: V8's young-generation cap for the server's HTTP thread (node --max-semi-space-size); by
  // default V8 grows it to 16 MB per semi-space under load and keeps it, which is most of the RSS growth seen
  const args = [...(v["semi-space"] ? [`--max-semi-space-size=${v["semi-space"]}`] : []), bin, "serve", "--port", "0", "--concurrency", String(v.concurrency), ...(v.model ? ["--model", v.model] : []), ...(v.threads ? ["--threads", v.threads] : [])];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  for (let i = 0; i < 600 && !/listening on /.test(out); i++) {
    if (child.exitCode !== null) throw new Error(`xverse serve exited: ${err}`);
    await sleep(100);
  }
  const m = /listening on (\S+)/.exec(out);
  if (!m) throw new Error(`xverse serve did not start: ${err}`);
  return { url: m[1], child, stderr: () => err };
}

const PROMPTS = ["Tell me a story about a cat.", "What did Lily find in the park?", "Once upon a time", "Why is the sky blue?", "Write about a big red ball."];

interface Outcome { kind: "completed" | "cut" | "error"; ttft?: number; total?: number; tokens: number; why?: string }

/** One streaming chat request; `cutAfter` chunks → hang up (as a closed browser tab would). */
async function streamOnce(url: string, i: number, cutAfter: number | null): Promise<Outcome> {
  const t0 = performance.now();
  const ac = new AbortController();
  let ttft: number | undefined, tokens = 0, done = false, finish: string | null = null;
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST", signal: ac.signal, headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model: "m", stream: true, temperature: 0.8, top_p: 0.95, seed: i,
        max_tokens: 16 + (i * 37) % MAX_TOKENS,
        messages: [{ role: "user", content: PROMPTS[i % PROMPTS.length] }],
      }),
    });
    if (res.status !== 200) return { kind: "error", tokens, why: `HTTP ${res.status}: ${await res.text()}` };
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let k: number;
      while ((k = buf.indexOf("\n\n")) >= 0) {
        const data = buf.slice(6, k);
        buf = buf.slice(k + 2);
        if (data === "[DONE]") { done = true; continue; }
        const c = JSON.parse(data);
        if (c.error) return { kind: "error", tokens, why: c.error.message };
        const ch = c.choices?.[0];
        if (ch?.delta?.content) {
          ttft ??= performance.now() - t0;
          tokens++;
        }
        if (ch?.finish_reason) finish = ch.finish_reason;
        if (cutAfter !== null && tokens >= cutAfter) {
          ac.abort();
          return { kind: "cut", tokens };
        }
      }
    }
  } catch (e) {
    if (ac.signal.aborted) return { kind: "cut", tokens };
    return { kind: "error", tokens, why: (e as Error).message };
  }
  // a short reply can end before the client meant to hang up: that stream simply completed
  if (!done || !finish) return { kind: "error", tokens, why: `stream ended without ${done ? "finish_reason" : "[DONE]"}` };
  return { kind: "completed", ttft: ttft ?? performance.now() - t0, total: performance.now() - t0, tokens };
}

const health = async (url: string): Promise<Health> => (await fetch(`${url}/health`)).json() as Promise<Health>;

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const ms = (x: number) => `${x.toFixed(0)} ms`;

async function main(): Promise<void> {
  const srv = await startServer();
  try {
    const cold = await health(srv.url);
    let seq = 1;
    /** All clients for `secs` seconds; returns their outcomes and the peak RSS seen. */
    const phase = async (secs: number, outcomes: Outcome[]): Promise<number> => {
      let peak = 0;
      const end = Date.now() + secs * 1000;
      const sampler = (async () => {
        while (Date.now() < end) {
          peak = Math.max(peak, (await health(srv.url)).rss);
          await sleep(250);
        }
      })();
      await Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
        while (Date.now() < end) {
          const i = seq++;
          outcomes.push(await streamOnce(srv.url, i, c < DISCONNECTERS ? 1 + (i % 12) : null));
        }
      }));
      await sampler;
      return peak;
    };
    /** Waits for the server to drain, then a moment for it to settle. */
    const idle = async (): Promise<Health> => {
      let h = await health(srv.url);
      for (let i = 0; i < 100 && (h.active || h.queued); i++) { await sleep(100); h = await health(srv.url); }
      await sleep(2000);
      return health(srv.url);
    };

    // The baseline is the idle server after a warm-up under the same load: the first burst sizes V8's heaps and
    // JIT-compiles the hot paths, memory a server keeps; what must not happen is growth from one period to the next.
    const warm: Outcome[] = [];
    const warmSecs = Math.max(3, Math.min(10, SECONDS / 6));
    await phase(warmSecs, warm);
    const base = await idle();
    console.log(`server ${srv.url} · ${CLIENTS} streaming clients (${DISCONNECTERS} hang up mid-stream) for ${SECONDS} s · ` +
      `RSS cold ${mb(cold.rss)}, after a ${warmSecs.toFixed(0)} s warm-up (baseline) ${mb(base.rss)}`);

    const outcomes: Outcome[] = [];
    const t0 = performance.now();
    const peak = await phase(SECONDS, outcomes);
    const wall = (performance.now() - t0) / 1000;
    const after = await idle();
    outcomes.push(...warm.filter((o) => o.kind === "error"));

    const completed = outcomes.filter((o) => o.kind === "completed");
    const cut = outcomes.filter((o) => o.kind === "cut");
    const errors = outcomes.filter((o) => o.kind === "error");
    const tokens = outcomes.reduce((s, o) => s + o.tokens, 0);
    const ttft = completed.map((o) => o.ttft!), total = completed.map((o) => o.total!);
    const serverLog = srv.stderr().split("\n").filter((l) => /^error/.test(l));
    console.log(`requests ${outcomes.length} · completed ${completed.length} · cut by clients ${cut.length} · errors ${errors.length} · server errors logged ${serverLog.length} · server failed ${after.failed - base.failed}`);
    console.log(`throughput ${(tokens / wall).toFixed(0)} streamed tok/s over ${wall.toFixed(1)} s · server counts: completed ${after.completed}, aborted mid-generation ${after.aborted}`);
    console.log(`TTFT   p50 ${ms(pct(ttft, 50))} · p90 ${ms(pct(ttft, 90))} · p99 ${ms(pct(ttft, 99))}`);
    console.log(`total  p50 ${ms(pct(total, 50))} · p90 ${ms(pct(total, 90))} · p99 ${ms(pct(total, 99))}`);
    console.log(`RSS    baseline ${mb(base.rss)} · peak ${mb(peak)} · after ${mb(after.rss)} (${(((after.rss - base.rss) / base.rss) * 100).toFixed(1)}% over baseline)`);
    console.log(`heap   used/committed, baseline → after: HTTP thread ${mb(base.heap_used)}/${mb(base.heap_total)} → ${mb(after.heap_used)}/${mb(after.heap_total)} · ` +
      `worker ${mb(base.worker_heap_used)}/${mb(base.worker_heap_total)} → ${mb(after.worker_heap_used)}/${mb(after.worker_heap_total)} · largest decode batch ${after.max_batch}`);
    for (const e of errors.slice(0, 5)) console.log(`  error: ${e.why}`);
    for (const l of serverLog.slice(0, 5)) console.log(`  server: ${l}`);
    if (errors.length || serverLog.length || after.failed !== base.failed) process.exitCode = 1;
  } finally {
    srv.child?.kill("SIGTERM");
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
