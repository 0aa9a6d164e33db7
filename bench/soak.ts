/**
 * Soak test for `xverse serve` (npm run bench:soak -- [--seconds 300] [--clients 64]): N concurrent clients for a
 * while, each looping over a mix of what a server meets in the wild — normal streaming chats and completions,
 * hang-ups mid-stream, malformed JSON, oversize bodies, max_tokens of 1e9 and 1e400, slow readers (a stream read a
 * chunk at a time with pauses), a body that stops arriving, requests sharing a long system prompt, sampled ones at
 * tiny temperatures — while a prober times /health. Reports requests by kind and outcome, a line `5xx: N` (must
 * be 0), TTFT / inter-token percentiles, RSS (raw start → end, and the drift after the warm-up, ≤ 10 %, its rule
 * printed with it), /health p99 and the KV blocks held after the load drains (back to the baseline: nothing
 * leaked). Exits 1 when 5xx > 0, RSS drifts > 10 % or KV blocks leak. A script, not a test.
 *
 *   node dist/bench/soak.js [--seconds 300] [--clients 64] [--concurrency 4] [--model DIR] [--url URL]
 *
 * Hunting memory growth: --probe DIR loads bench/heap-probe.ts into the server (memory of every thread every 2 s
 * in DIR/memory.jsonl; HEAP_PROBE_SMAPS=k copies /proc/self/smaps every k samples); --snapshots adds heap
 * snapshots of every thread after the warm-up, half-way and after the drain (compare them with bench/heap-diff.ts;
 * a snapshot costs the process tens of MiB of RSS, so never read the drift of a run that took them);
 * bench/memory-report.ts summarizes the folder;
 * --node-flags "…" passes V8 flags to the server. */
import type { ChildProcess } from "node:child_process";
import { startServe } from "./serve-child.js";
import { connect } from "node:net";
import { parseArgs } from "node:util";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { benchFailed, helpFromHeader, parseFlags } from "./cli.js";

helpFromHeader(import.meta.url);

const { values: v } = parseFlags(() => parseArgs({
  options: {
    seconds: { type: "string", default: "300" }, clients: { type: "string", default: "64" }, concurrency: { type: "string", default: "4" },
    model: { type: "string" }, url: { type: "string" }, "max-tokens": { type: "string", default: "48" },
    probe: { type: "string" }, snapshots: { type: "boolean", default: false }, "node-flags": { type: "string", default: "" },
  },
}));
const SECONDS = Number(v.seconds), CLIENTS = Number(v.clients), MAX_TOKENS = Number(v["max-tokens"]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startServer(): Promise<{ url: string; child: ChildProcess | null }> {
  if (v.url) return { url: v.url.replace(/\/+$/, ""), child: null };
  // --probe DIR: memory samples of both threads and heap snapshots at the phases below (bench/heap-probe.ts)
  const probe = v.probe ? ["--import", fileURLToPath(new URL("./heap-probe.js", import.meta.url))] : [];
  // The server runs as users run it. (Pinning V8's semi-spaces here, as this script once did, overrode the young
  // generation caps `xverse serve` gives its HTTP and model threads and added ~50 MiB to RSS under load; --node-flags
  // is for experiments.)
  return startServe(["--concurrency", v.concurrency!, "--body-timeout", "5", ...(v.model ? ["--model", v.model] : [])],
    [...v["node-flags"]!.split(/\s+/).filter(Boolean), ...probe], v.probe ? { HEAP_PROBE_DIR: resolve(v.probe) } : {});
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

interface Health { rss: number; heap_used: number; worker_heap_used: number; kv_pool_bytes?: number }
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
const signed = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)} %`;
const median = (a: number[]) => pct(a, 50);

/** --probe: heap snapshots of both server threads, tagged by phase (the child writes them after a full GC). */
async function snapshot(child: ChildProcess | null, tag: string): Promise<void> {
  if (!v.probe || !v.snapshots || !child) return;
  writeFileSync(join(v.probe, "tag"), tag);
  child.kill("SIGUSR2");
  await sleep(8000);
}

async function main(): Promise<void> {
  if (v.probe) mkdirSync(v.probe, { recursive: true });
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
    const boot = await health(srv.url);
    // warm-up under the same mix (JIT, V8 heaps and malloc arenas growing to their working size, KV pool segments,
    // prefix blocks): the RSS baseline is taken after it, as a long-running server's would be. It lasts 10 % of the
    // run (5-30 s), in 5 s steps, and goes on, up to 3× that, while the KV pool still adds segments or the median
    // RSS of a step is still 2 % above the step before: a pool growing to its budget and heaps growing to their
    // working size are legitimate, so the baseline waits for them. A leak still shows: the measured run that
    // follows has its full length whatever the warm-up took.
    const warm = Math.min(30, Math.max(5, SECONDS / 10)), step = Math.min(5, warm);
    const warmRss: number[] = [];
    let warming = true;
    const warmProber = (async () => { while (warming) { warmRss.push((await health(srv.url)).rss); await sleep(250); } })();
    let warmed = 0, pool = -1, prevRss = 0;
    for (;;) {
      const from = warmRss.length;
      await load(step);
      warmed += step;
      const p = (await health(srv.url)).kv_pool_bytes ?? 0;
      const rss = median(warmRss.slice(from));
      const grew = p > pool || !(rss <= prevRss * 1.02);
      pool = p;
      prevRss = rss;
      if (warmed >= warm && (!grew || warmed >= 3 * warm)) break;
    }
    warming = false;
    await warmProber;
    healthMs.length = 0;
    const warmFive = fiveXX;
    outcomes.clear(); ttfts.length = 0; itls.length = 0; n = 0;
    await sleep(1500);
    const base = await health(srv.url);
    const kv0 = await kvHeld(srv.url);
    await snapshot(srv.child, "warm");
    // RSS under load, sampled with every /health probe (every ~250 ms), with the run's progress
    const samples: { t: number; h: Health }[] = [];
    let probing = true;
    const t0 = Date.now();
    const prober = (async () => { while (probing) { samples.push({ t: (Date.now() - t0) / 1000, h: await health(srv.url) }); await sleep(250); } })();
    if (v.snapshots) {
      await load(SECONDS / 2);
      await snapshot(srv.child, "mid");
      await load(SECONDS / 2);
    } else await load(SECONDS);
    probing = false;
    await prober;
    await sleep(3000); // the load drains: aborted requests leave, cached blocks stay cached (not held)
    await snapshot(srv.child, "drained");
    const after = await health(srv.url);
    const kv1 = await kvHeld(srv.url);
    // A single RSS sample under load swings by several MiB with GC timing (young generations and freed pages come
    // and go); the drift compares medians over windows of the same load instead: the first 10 % of the measured run
    // (right after the warm-up) against the last 10 %, and the idle RSS after the drain when that is higher.
    const win = (from: number, to: number) => samples.filter((x) => x.t >= from * SECONDS && x.t < to * SECONDS);
    const first = win(0, 0.1), last = win(0.9, 1.01), mid = win(0.45, 0.55);
    const rss0 = median(first.map((x) => x.h.rss)), rss1 = median(last.map((x) => x.h.rss)), rssMid = median(mid.map((x) => x.h.rss));
    const drift = (Math.max(rss1, after.rss) - rss0) / rss0;
    const heaps = (h: Health) => `${mb(h.heap_used)} http + ${mb(h.worker_heap_used)} model thread`;
    console.log(`soak: ${SECONDS} s (after a ${warmed} s warm-up${warmed > warm ? `, extended from ${warm} s while the KV pool or RSS grew` : ""}; 5xx there: ${warmFive}), ${CLIENTS} clients, ${n} requests`);
    for (const [k, c] of [...outcomes].sort()) console.log(`  ${k.padEnd(44)} ${c}`);
    console.log(`5xx: ${fiveXX}`);
    console.log(`TTFT ms p50 ${pct(ttfts, 50).toFixed(0)} · p90 ${pct(ttfts, 90).toFixed(0)} · p99 ${pct(ttfts, 99).toFixed(0)}   ITL ms p50 ${pct(itls, 50).toFixed(1)} · p99 ${pct(itls, 99).toFixed(1)}`);
    console.log(`RSS raw: idle after start ${mb(boot.rss)} → after warm-up ${mb(base.rss)} → after drain ${mb(after.rss)} (start→end ${signed((after.rss - boot.rss) / boot.rss)}, warm-up→end idle ${signed((after.rss - base.rss) / base.rss)})`);
    console.log(`RSS drift ${signed(drift)} (rule: median RSS over the last 10 % of the load, or after the drain if higher, vs the median over the first 10 % after the warm-up; ≤ 10 %): `
      + `${mb(rss0)} → ${mb(rss1)} under load (half-way ${mb(rssMid)}; ${first.length}/${last.length} samples), ${mb(after.rss)} after the drain`);
    console.log(`  JS heaps used after warm-up ${heaps(base)} · after drain ${heaps(after)}; KV pool ${mb(base.kv_pool_bytes ?? 0)} → ${mb(after.kv_pool_bytes ?? 0)}`);
    console.log(`/health ms p50 ${pct(healthMs, 50).toFixed(1)} · p99 ${pct(healthMs, 99).toFixed(1)} (${healthMs.length} probes)`);
    console.log(`KV blocks held (usage ratio) before ${kv0} · after drain ${kv1}`);
    const leak = kv0 !== null && kv1 !== null && kv1 > kv0;
    process.exitCode = fiveXX > 0 || !(drift <= 0.1) || leak ? 1 : 0; // fiveXX counts the warm-up too
  } finally {
    srv.child?.kill();
  }
}

await main().catch(benchFailed);
