/**
 * Soak test for `xverse serve` (npm run bench:soak -- [--seconds 300] [--clients 64]): N concurrent clients for a
 * while, each looping over a mix of what a server meets in the wild — normal streaming chats and completions,
 * hang-ups mid-stream, malformed JSON, oversize bodies, max_tokens of 1e9 and 1e400, slow readers (a stream read a
 * chunk at a time with pauses), a body that stops arriving, requests sharing a long system prompt, sampled ones at
 * tiny temperatures — while a prober times /health. Reports requests by kind and outcome, a line `5xx: N` (must
 * be 0), TTFT / inter-token percentiles, RSS at start / end (drift ≤ 10 %), /health p99 and the KV blocks held
 * after the load drains (back to the baseline: nothing leaked). Exits 1 when 5xx > 0, RSS drifts > 10 % or KV
 * blocks leak. A script, not a test.
 *
 *   node dist/bench/soak.js [--seconds 300] [--clients 64] [--concurrency 4] [--model DIR] [--url URL]
 */
import type { ChildProcess } from "node:child_process";
import { startServe } from "./serve-child.js";
import { connect } from "node:net";
import { parseArgs } from "node:util";

const { values: v } = parseArgs({
  options: {
    seconds: { type: "string", default: "300" }, clients: { type: "string", default: "64" }, concurrency: { type: "string", default: "4" },
    model: { type: "string" }, url: { type: "string" }, "max-tokens": { type: "string", default: "48" },
  },
});
const SECONDS = Number(v.seconds), CLIENTS = Number(v.clients), MAX_TOKENS = Number(v["max-tokens"]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startServer(): Promise<{ url: string; child: ChildProcess | null }> {
  if (v.url) return { url: v.url.replace(/\/+$/, ""), child: null };
  // V8's young generation is pinned at 16 MB per semi-space (its cap): left to grow under load it adds ~30 MiB of
  // RSS once and keeps it, which the drift check would count as a leak
  return startServe(["--concurrency", v.concurrency!, "--body-timeout", "5", ...(v.model ? ["--model", v.model] : [])],
    ["--min-semi-space-size=16", "--max-semi-space-size=16"]);
}

type Kind = "chat-stream" | "completion" | "hang-up" | "bad-json" | "oversize" | "huge-max-tokens" | "inf-max-tokens" | "slow-reader" | "stalled-body" | "shared-prefix" | "tiny-temperature";
const KINDS: [Kind, number][] = [
  ["chat-stream", 20], ["completion", 10], ["hang-up", 10], ["bad-json", 6], ["oversize", 3], ["huge-max-tokens", 5], ["inf-max-tokens", 4],
  ["slow-reader", 6], ["stalled-body", 2], ["shared-prefix", 20], ["tiny-temperature", 6],
];
const TOTAL_W = KINDS.reduce((n, [, w]) => n + w, 0);
const SYSTEM = "You are a storyteller for small children. ".repeat(40);

const outcomes = new Map<string, number>();
const count = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
const ttfts: number[] = [], itls: number[] = [], healthMs: number[] = [];
let fiveXX = 0;

/** Streams an SSE response; `cutAfter` chunks → hang up; `pauseMs` between reads → a slow reader. */
async function stream(url: string, path: string, body: object, o: { cutAfter?: number; pauseMs?: number } = {}): Promise<string> {
  const ac = new AbortController();
  const t0 = performance.now();
  const res = await fetch(url + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal: ac.signal });
  if (res.status >= 500) fiveXX++;
  if (!res.ok || !res.body) { await res.text(); return `http ${res.status}`; }
  const reader = res.body.getReader();
  let chunks = 0, last = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const now = performance.now();
      const n = new TextDecoder().decode(value).split("\n\n").filter((e) => e.startsWith("data: {")).length;
      if (n && !chunks) ttfts.push(now - t0); else if (n && last) itls.push((now - last) / n);
      if (n) last = now;
      chunks += n;
      if (/"error"/.test(new TextDecoder().decode(value))) return "error-chunk";
      if (o.cutAfter !== undefined && chunks >= o.cutAfter) { ac.abort(); return "cut"; }
      if (o.pauseMs) await sleep(o.pauseMs);
    }
  } catch (e) {
    if (ac.signal.aborted) return "cut";
    return `client error ${(e as Error).message}`;
  }
  return "200 done";
}

async function post(url: string, path: string, body: string): Promise<string> {
  const res = await fetch(url + path, { method: "POST", headers: { "Content-Type": "application/json" }, body });
  await res.arrayBuffer();
  if (res.status >= 500) fiveXX++;
  return `http ${res.status}`;
}

/** A body that stops arriving: headers promise 1000 bytes, 20 come; the server must answer 408 and close. */
function stalledBody(url: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(u.port), u.hostname);
    let text = "";
    s.on("data", (b) => { text += b; });
    s.on("error", () => {});
    s.on("close", () => { const m = /^HTTP\/1\.1 (\d+)/.exec(text); if (m && m[1].startsWith("5")) fiveXX++; resolve(m ? `http ${m[1]}` : "closed without answer"); });
    s.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"prompt": "Once`);
    setTimeout(() => s.destroy(), 30_000);
  });
}

async function one(url: string, kind: Kind, i: number): Promise<string> {
  const chat = (extra: object = {}) => ({ stream: true, max_tokens: 8 + (i % MAX_TOKENS), messages: [{ role: "user", content: `Tell me about the number ${i}.` }], ...extra });
  switch (kind) {
    case "chat-stream": return stream(url, "/v1/chat/completions", chat({ temperature: 0.8, seed: i }));
    case "completion": return post(url, "/v1/completions", JSON.stringify({ prompt: `Once upon a time ${i}`, max_tokens: 8 + (i % MAX_TOKENS), logprobs: 2 }));
    case "hang-up": return stream(url, "/v1/chat/completions", chat(), { cutAfter: 1 + (i % 5) });
    case "bad-json": return post(url, "/v1/chat/completions", ['{"messages": [', "{'a': 1}", "", "null", '{"messages": 5}', '{"prompt": "x"'][i % 6]);
    case "oversize": return post(url, "/v1/completions", JSON.stringify({ prompt: "x".repeat(5 * 1024 * 1024) }));
    case "huge-max-tokens": return stream(url, "/v1/chat/completions", chat({ max_tokens: 1e9 }), { cutAfter: 40 });
    case "inf-max-tokens": return post(url, "/v1/completions", '{"prompt": "Once", "max_tokens": 1e400}');
    case "slow-reader": return stream(url, "/v1/chat/completions", chat(), { pauseMs: 200 });
    case "stalled-body": return stalledBody(url);
    case "shared-prefix": return stream(url, "/v1/chat/completions", { ...chat(), messages: [{ role: "system", content: SYSTEM }, { role: "user", content: `Story ${i % 7}` }] });
    case "tiny-temperature": return stream(url, "/v1/chat/completions", chat({ temperature: 1e-300, seed: i }));
  }
}

interface Health { rss: number }
async function health(url: string): Promise<Health> {
  const t0 = performance.now();
  const r = await fetch(url + "/health");
  const j = (await r.json()) as Health;
  healthMs.push(performance.now() - t0);
  return j;
}
async function kvHeld(url: string): Promise<number | null> {
  const r = await fetch(url + "/metrics");
  if (!r.ok) return null;
  const m = /^xverse_kv_cache_usage_ratio (\S+)$/m.exec(await r.text());
  return m ? Number(m[1]) : null;
}

const pct = (a: number[], p: number) => { if (!a.length) return NaN; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const srv = await startServer();
  try {
    let n = 0;
    const load = (seconds: number) => {
      const end = Date.now() + seconds * 1000;
      return Promise.all(Array.from({ length: CLIENTS }, async (_, c) => {
        while (Date.now() < end) {
          const i = n++;
          let r = (i * 2654435761 + c) % TOTAL_W, kind: Kind = "chat-stream";
          for (const [k, w] of KINDS) { if (r < w) { kind = k; break; } r -= w; }
          const out = await one(srv.url, kind, i).catch((e: Error) => `client error ${e.message}`);
          count(`${kind}: ${out}`);
        }
      }));
    };
    // warm-up under the same mix (JIT, V8's young generation growing to its working size, pool segments, prefix
    // blocks): the RSS baseline is taken after it, as a long-running server's would be
    const warm = Math.min(30, Math.max(5, SECONDS / 10));
    await load(warm);
    const warmFive = fiveXX;
    outcomes.clear(); ttfts.length = 0; itls.length = 0; n = 0;
    await sleep(1500);
    const base = await health(srv.url);
    const kv0 = await kvHeld(srv.url);
    let probing = true;
    const prober = (async () => { while (probing) { await health(srv.url); await sleep(250); } })();
    await load(SECONDS);
    probing = false;
    await prober;
    await sleep(3000); // the load drains: aborted requests leave, cached blocks stay cached (not held)
    const after = await health(srv.url);
    const kv1 = await kvHeld(srv.url);
    const drift = (after.rss - base.rss) / base.rss;
    console.log(`soak: ${SECONDS} s (after a ${warm} s warm-up, 5xx there: ${warmFive}), ${CLIENTS} clients, ${n} requests`);
    for (const [k, c] of [...outcomes].sort()) console.log(`  ${k.padEnd(44)} ${c}`);
    console.log(`5xx: ${fiveXX}`);
    console.log(`TTFT ms p50 ${pct(ttfts, 50).toFixed(0)} · p90 ${pct(ttfts, 90).toFixed(0)} · p99 ${pct(ttfts, 99).toFixed(0)}   ITL ms p50 ${pct(itls, 50).toFixed(1)} · p99 ${pct(itls, 99).toFixed(1)}`);
    console.log(`RSS start ${mb(base.rss)} · end ${mb(after.rss)} (${(drift * 100).toFixed(1)} %)`);
    console.log(`/health ms p50 ${pct(healthMs, 50).toFixed(1)} · p99 ${pct(healthMs, 99).toFixed(1)} (${healthMs.length} probes)`);
    console.log(`KV blocks held (usage ratio) before ${kv0} · after drain ${kv1}`);
    const leak = kv0 !== null && kv1 !== null && kv1 > kv0;
    process.exitCode = fiveXX > 0 || drift > 0.1 || leak ? 1 : 0; // fiveXX counts the warm-up too
  } finally {
    srv.child?.kill();
  }
}

await main();
