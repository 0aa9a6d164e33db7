/**
 * Load test for `xverse serve` (npm run bench:load): N concurrent streaming clients on loopback for a while,
 * a quarter of them hanging up mid-stream on every request. Prints server errors (must be 0), completed and
 * cut streams, throughput, latency percentiles (time to first token and total, p50/p90/p99) and the server's
 * RSS before, at peak and after (should return near its baseline once the clients are gone).
 * Not a test: it reports, and exits 1 only on server errors or a stream that should have completed and did not.
 *
 * --shared-prefix runs a different scenario instead: every one of the clients sends --requests chat requests that
 * share one ~1,000-token system prompt (--prefix-tokens) and differ in a short user message, first with a unique
 * random token at the very start of each system prompt (nothing can be shared: the "before"), then as is. It
 * reports the cached-token share (Σ usage.prompt_tokens_details.cached_tokens / Σ usage.prompt_tokens, from
 * streams with stream_options.include_usage; target ≥ 90 %) and throughput (requests/s, tokens/s) of both.
 *
 *   node dist/bench/server-load.js [--seconds 60] [--clients 32] [--concurrency 4] [--max-tokens 128] [--model DIR]
 *                                  [--threads N] [--ctx-size N] [--semi-space MB] [--url URL (an already running server)]
 *   node dist/bench/server-load.js --shared-prefix [--clients 32] [--requests 4] [--prefix-tokens 1000]
 *                                  [--reply-tokens 32] [--concurrency 4] [--ctx-size 2048] [--model DIR] [--threads N]
 */
import type { ChildProcess } from "node:child_process";
import { startServe } from "./serve-child.js";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchFailed, helpFromHeader, parseFlags } from "./cli.js";

helpFromHeader(import.meta.url);

const { values: v } = parseFlags(() => parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    clients: { type: "string", default: "32" },
    concurrency: { type: "string", default: "4" },
    "max-tokens": { type: "string", default: "128" },
    model: { type: "string" },
    threads: { type: "string" },
    "semi-space": { type: "string" },
    url: { type: "string" },
    "ctx-size": { type: "string" },
    "shared-prefix": { type: "boolean" },
    requests: { type: "string", default: "4" },
    "prefix-tokens": { type: "string", default: "1000" },
    "reply-tokens": { type: "string", default: "32" },
  },
}));
const SECONDS = Number(v.seconds), CLIENTS = Number(v.clients), MAX_TOKENS = Number(v["max-tokens"]);
// the shared-prefix scenario needs room for its system prompt: the embedded model's own context is 512 tokens
const CTX_SIZE = v["ctx-size"] ?? (v["shared-prefix"] ? "2048" : undefined);

const MODEL = v.model;
const DISCONNECTERS = Math.round(CLIENTS / 4);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Health { active: number; queued: number; failed: number; completed: number; aborted: number; rss: number; heap_used: number; heap_total: number; worker_heap_used: number; worker_heap_total: number; max_batch: number }

async function startServer(): Promise<{ url: string; child: ChildProcess | null; stderr: () => string }> {
  if (v.url) return { url: v.url.replace(/\/+$/, ""), child: null, stderr: () => "" };
  // --semi-space MB: V8's young-generation cap for the server's HTTP thread (node --max-semi-space-size); by
  // default V8 grows it to 16 MB per semi-space under load and keeps it, which is most of the RSS growth seen
  return startServe([
    "--concurrency", String(v.concurrency), ...(MODEL ? ["--model", MODEL] : []), ...(v.threads ? ["--threads", v.threads] : []),
    ...(CTX_SIZE ? ["--ctx-size", CTX_SIZE] : []),
  ], v["semi-space"] ? [`--max-semi-space-size=${v["semi-space"]}`] : []);
}

const PROMPTS = ["Tell me a story about a cat.", "What did Lily find in the park?", "Once upon a time", "Why is the sky blue?", "Write about a big red ball."];

/** The usage chunk of a stream (stream_options.include_usage). */
interface Usage { prompt: number; completion: number; cached: number }

interface Outcome { kind: "completed" | "cut" | "error"; ttft?: number; total?: number; tokens: number; why?: string; usage?: Usage }

/** One streaming chat request; `cutAfter` chunks → hang up (as a closed browser tab would). */
function streamOnce(url: string, i: number, cutAfter: number | null): Promise<Outcome> {
  return streamChat(url, {
    model: "m", stream: true, temperature: 0.8, top_p: 0.95, seed: i,
    max_tokens: 16 + (i * 37) % MAX_TOKENS,
    messages: [{ role: "user", content: PROMPTS[i % PROMPTS.length] }],
  }, cutAfter);
}

/** Posts one streaming chat request body and reads its SSE chunks (usage too, when the body asks for it). */
async function streamChat(url: string, body: object, cutAfter: number | null): Promise<Outcome> {
  const t0 = performance.now();
  const ac = new AbortController();
  let ttft: number | undefined, tokens = 0, done = false, finish: string | null = null, usage: Usage | undefined;
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST", signal: ac.signal, headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
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
        if (c.usage) usage = { prompt: c.usage.prompt_tokens, completion: c.usage.completion_tokens, cached: c.usage.prompt_tokens_details?.cached_tokens ?? 0 };
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
  return { kind: "completed", ttft: ttft ?? performance.now() - t0, total: performance.now() - t0, tokens, usage };
}

const health = async (url: string): Promise<Health> => (await fetch(`${url}/health`)).json() as Promise<Health>;

function pct(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const ms = (x: number) => `${x.toFixed(0)} ms`;

/** A system prompt of `sentences` numbered rules (deterministic), optionally after a unique leading token. */
function systemPrompt(sentences: number, unique = ""): string {
  const things = ["cat", "ball", "park", "tree", "dog", "bird", "sun", "boat", "cake", "flower"];
  const rules: string[] = [];
  for (let k = 0; k < sentences; k++) rules.push(`Rule ${k + 1}: when the story has a ${things[k % things.length]}, keep it happy and tell it in small words.`);
  return (unique ? unique + " " : "") + "You are a friendly storyteller for little children. " + rules.join(" ");
}

/** A token no other request has (random letters and digits), so a prompt that starts with it shares no block. */
const uniqueToken = () => `${Math.random().toString(36).slice(2, 8)}${Math.random().toString(36).slice(2, 6)}:`;

/**
 * --shared-prefix: all clients at once, each sending its requests one after another; first with a unique token
 * leading every system prompt (the same work with nothing to share), then with the shared system prompt.
 */
async function sharedPrefix(url: string): Promise<void> {
  const REQUESTS = Number(v.requests), TARGET = Number(v["prefix-tokens"]), REPLY = Number(v["reply-tokens"]);
  const body = (system: string | null, i: number, maxTokens = REPLY) => ({
    model: "m", stream: true, stream_options: { include_usage: true }, temperature: 0.8, top_p: 0.95, seed: i,
    max_tokens: maxTokens, ignore_eos: true,
    messages: [...(system === null ? [] : [{ role: "system", content: system }]), { role: "user", content: `${PROMPTS[i % PROMPTS.length]} (${i})` }],
  });
  // size the system prompt from the server's own counts (unique tokens lead every probe, so the probes leave
  // nothing in the cache that the runs below could reuse): prompt tokens without a system message, with the
  // preamble alone and with 20 rules → rules needed for TARGET tokens of system message
  const probe = async (system: string | null): Promise<number> => {
    const o = await streamChat(url, body(system, 0, 1), null);
    if (o.kind !== "completed" || !o.usage) throw new Error(`probe request failed: ${o.why ?? "no usage chunk"}`);
    return o.usage.prompt;
  };
  const none = await probe(null), p0 = await probe(systemPrompt(0, uniqueToken())), p20 = await probe(systemPrompt(20, uniqueToken()));
  if (!(p20 > p0 && p0 > none)) throw new Error(`the server dropped the system message (prompt tokens: ${none} without one, ${p0} with a short one, ${p20} with a longer one): is the model's context too small?`);
  const sentences = Math.max(1, Math.ceil((TARGET - (p0 - none)) / ((p20 - p0) / 20)));
  const full = await probe(systemPrompt(sentences, uniqueToken()));
  if (full <= p20 && sentences > 20) throw new Error(`the server dropped the ${sentences}-rule system message (${full} prompt tokens): is the model's context too small?`);
  const sysTokens = full - none;
  // warm-up (JIT, scratch buffers): a few requests that share nothing
  await Promise.all(Array.from({ length: 4 }, (_, i) => streamChat(url, body(systemPrompt(sentences, uniqueToken()), i), null)));

  const runs: { label: string; outcomes: Outcome[]; wall: number }[] = [];
  let seq = 1;
  for (const [label, unique] of [["unique first token (nothing shareable)", true], ["shared system prompt", false]] as const) {
    const shared = systemPrompt(sentences);
    const outcomes: Outcome[] = [];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      for (let r = 0; r < REQUESTS; r++) {
        const i = seq++;
        outcomes.push(await streamChat(url, body(unique ? systemPrompt(sentences, uniqueToken()) : shared, i), null));
      }
    }));
    runs.push({ label, outcomes, wall: (performance.now() - t0) / 1000 });
  }

  console.log(`shared-prefix scenario: server ${url} · ${CLIENTS} clients × ${REQUESTS} streaming chat requests each, all at once · ` +
    `system prompt ${sysTokens} tokens (${sentences} rules), short user messages · max_tokens ${REPLY} with ignore_eos · model ${MODEL ?? "(server's)"}`);
  console.log("");
  console.log("| system prompt | requests | errors | prompt tokens | cached tokens | cached share | wall s | requests/s | completion tok/s | prompt tok/s | TTFT p50 | TTFT p90 |");
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|");
  const share: number[] = [], rps: number[] = [];
  for (const r of runs) {
    const ok = r.outcomes.filter((o) => o.kind === "completed" && o.usage);
    const errors = r.outcomes.length - ok.length;
    const prompt = ok.reduce((a, o) => a + o.usage!.prompt, 0), cached = ok.reduce((a, o) => a + o.usage!.cached, 0);
    const completion = ok.reduce((a, o) => a + o.usage!.completion, 0);
    const ttft = ok.map((o) => o.ttft!);
    share.push(cached / prompt);
    rps.push(ok.length / r.wall);
    console.log(`| ${r.label} | ${r.outcomes.length} | ${errors} | ${prompt} | ${cached} | ${((100 * cached) / prompt).toFixed(1)} % | ${r.wall.toFixed(1)} | ` +
      `${(ok.length / r.wall).toFixed(2)} | ${(completion / r.wall).toFixed(1)} | ${(prompt / r.wall).toFixed(0)} | ${ms(pct(ttft, 50))} | ${ms(pct(ttft, 90))} |`);
    for (const e of r.outcomes.filter((o) => o.kind !== "completed" || !o.usage).slice(0, 5)) console.log(`  error: ${e.why ?? "no usage chunk"}`);
    if (errors) process.exitCode = 1;
  }
  console.log("");
  console.log(`cached share with the shared system prompt: ${(100 * share[1]).toFixed(1)} % (target ≥ 90 %: ${share[1] >= 0.9 ? "met" : "MISSED"}); ` +
    `requests/s shared / unique: ${(rps[1] / rps[0]).toFixed(2)}×`);
  console.log(`cached_share: ${share[1].toFixed(3)}`);
  console.log(`throughput_ratio_shared_vs_unique: ${(rps[1] / rps[0]).toFixed(2)}`);
}

async function main(): Promise<void> {
  const srv = await startServer();
  if (v["shared-prefix"]) {
    try {
      await sharedPrefix(srv.url);
    } finally {
      srv.child?.kill("SIGTERM");
    }
    return;
  }
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

main().catch(benchFailed);
