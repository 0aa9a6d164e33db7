/**
 * GET /metrics in Prometheus text format (prom-client), one registry per server so several servers in one
 * process (tests) keep their own counts. Measured on the HTTP thread from the scheduler's events, so the numbers
 * are what clients see: time to first token from submission (queue wait included), the gap between tokens of one
 * choice, tokens in and out, requests by route and status; queue depth and the worker's KV pool use are read at
 * scrape time.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ToMain } from "./protocol.js";

/** What the gauges read when scraped (the scheduler's live numbers). */
export interface MetricsSource {
  stats(): { active: number; queued: number };
  kv(): { usedBlocks: number; cachedBlocks: number; capacityBlocks: number; blockSize: number };
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<"route" | "status">;
  private readonly promptTokens: Counter;
  private readonly generationTokens: Counter;
  private readonly ttft: Histogram;
  private readonly interToken: Histogram;
  private readonly duration: Histogram<"finish">;
  /** Per job: when it was submitted, and when each choice's last token came. */
  private readonly jobs = new Map<number, { t0: number; first: boolean; last: Map<number, number> }>();

  constructor(src: MetricsSource) {
    const registers = [this.registry];
    this.requests = new Counter({ name: "xverse_http_requests_total", help: "HTTP requests by route and status code", labelNames: ["route", "status"], registers });
    this.promptTokens = new Counter({ name: "xverse_prompt_tokens_total", help: "Prompt tokens of finished generations", registers });
    this.generationTokens = new Counter({ name: "xverse_generation_tokens_total", help: "Tokens generated", registers });
    this.ttft = new Histogram({
      name: "xverse_time_to_first_token_seconds", help: "From submission (queue wait included) to the first token",
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers,
    });
    this.interToken = new Histogram({
      name: "xverse_inter_token_latency_seconds", help: "Time between two tokens of one choice",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1], registers,
    });
    this.duration = new Histogram({
      name: "xverse_request_duration_seconds", help: "From submission to the last token, by finish reason", labelNames: ["finish"],
      buckets: [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300], registers,
    });
    new Gauge({ name: "xverse_requests_running", help: "Requests generating now", registers, collect() { this.set(src.stats().active); } });
    new Gauge({ name: "xverse_requests_waiting", help: "Requests waiting for a generation slot", registers, collect() { this.set(src.stats().queued); } });
    new Gauge({
      name: "xverse_kv_cache_usage_ratio", help: "KV pool blocks held by running requests / the blocks the budget allows", registers,
      collect() { const k = src.kv(); this.set(k.capacityBlocks ? k.usedBlocks / k.capacityBlocks : 0); },
    });
    new Gauge({ name: "xverse_kv_cache_cached_blocks", help: "Unreferenced KV blocks kept for prefix reuse", registers, collect() { this.set(src.kv().cachedBlocks); } });
  }

  submitted(id: number): void {
    this.jobs.set(id, { t0: performance.now(), first: true, last: new Map() });
  }

  /** Every event of a job, in order (the scheduler calls this before its handlers). */
  event(m: Extract<ToMain, { id: number }>): void {
    const j = this.jobs.get(m.id);
    if (!j) return;
    const now = performance.now();
    if (m.type === "start") this.promptTokens.inc(m.promptTokens);
    else if (m.type === "delta") {
      const c = m.choice ?? 0;
      if (j.first) this.ttft.observe((now - j.t0) / 1000);
      const prev = j.last.get(c);
      if (prev !== undefined) this.interToken.observe((now - prev) / 1000);
      j.first = false;
      j.last.set(c, now);
    } else if (m.type === "end") {
      this.generationTokens.inc(m.completionTokens);
      if (m.last !== false) {
        this.duration.observe({ finish: m.finishReason }, (now - j.t0) / 1000);
        this.jobs.delete(m.id);
      }
    } else if (m.type === "error") this.jobs.delete(m.id);
  }

  /** Jobs being timed (submitted, not yet ended). */
  get tracked(): number {
    return this.jobs.size;
  }

  /** A job dropped from the queue before it ran, or lost with a crashed worker. */
  dropped(id: number): void {
    this.jobs.delete(id);
  }

  http(route: string, status: number): void {
    this.requests.inc({ route, status: String(status) });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
