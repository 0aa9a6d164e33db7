/**
 * The HTTP thread's side of generation: one worker thread holding the model, at most `concurrency` jobs in it at
 * a time, the rest in a FIFO queue. Cancelling a queued job just removes it; cancelling a running one sends an
 * abort message, and its slot is freed only when the worker confirms the job ended — so a new job never starts
 * while the old one's KV cache is still being written.
 */
import { Worker } from "node:worker_threads";
import { ServerMetrics } from "./metrics.js";
import type { Job, KvUse, ModelInfo, ToMain, ToolRequest, ToWorker } from "./protocol.js";
import type { WorkerInit } from "./worker.js";

type Ev<T extends ToMain["type"]> = Extract<ToMain, { type: T }>;

export interface JobHandlers {
  onStart(m: Ev<"start">): void;
  onDelta(m: Ev<"delta">): void;
  onEnd(m: Ev<"end">): void;
  onError(m: Ev<"error">): void;
}

interface Entry {
  id: number;
  job: Job;
  h: JobHandlers;
  cancelled: boolean;
}

export interface SchedulerStats {
  active: number;
  queued: number;
  concurrency: number;
  completed: number;
  aborted: number;
  failed: number;
}

export class Scheduler {
  private worker!: Worker;
  private readonly queue: Entry[] = [];
  private readonly active = new Map<number, Entry>();
  /** Pending /tokenize and /detokenize answers by request id. */
  private readonly tools = new Map<number, { resolve: (m: ToMain) => void; reject: (e: unknown) => void }>();
  private nextId = 1;
  private ready = false;
  private closing = false;
  private counts = { completed: 0, aborted: 0, failed: 0 };
  model!: ModelInfo;
  /** Prometheus metrics of this scheduler's jobs (GET /metrics). */
  readonly metrics = new ServerMetrics({ stats: () => this.stats(), kv: () => this.kvUse });
  /** The worker's KV pool as of its last report (every second). */
  kvUse: KvUse = { usedBlocks: 0, cachedBlocks: 0, capacityBlocks: 0, blockSize: 0 };
  /** The worker's last memory report (heap bytes) and the largest decode batch it has run. */
  workerMemory = { heapUsed: 0, heapTotal: 0, maxBatch: 0, jobs: 0, decoding: 0 };

  private constructor(private readonly init: WorkerInit, readonly concurrency: number, private readonly log: (line: string) => void) {}

  /** Starts the worker and resolves once the model is loaded (rejects with the loader's message). */
  static async start(init: WorkerInit, concurrency: number, log: (line: string) => void = () => {}): Promise<Scheduler> {
    const s = new Scheduler(init, Math.max(1, concurrency), log);
    await s.spawn();
    return s;
  }

  private spawn(): Promise<void> {
    return new Promise((resolve, reject) => {
      // a small young generation: decoding allocates many short-lived objects, and V8 otherwise grows the
      // nursery under load and keeps it, which shows up as RSS that never returns to its idle level
      const w = new Worker(new URL("./worker.js", import.meta.url), { workerData: this.init, resourceLimits: { maxYoungGenerationSizeMb: 8 } });
      this.worker = w;
      let started = false;
      w.on("message", (m: ToMain) => {
        if (w !== this.worker) return;
        if (m.type === "ready") {
          this.model = m.model;
          this.ready = started = true;
          resolve();
          this.pump();
        } else if (m.type === "fatal") {
          reject(new Error(m.message));
          void w.terminate();
        } else if (m.type === "warning") this.log(`warning: ${m.message}`);
        else if (m.type === "memory") {
          this.workerMemory = { heapUsed: m.heapUsed, heapTotal: m.heapTotal, maxBatch: m.maxBatch, jobs: m.jobs ?? 0, decoding: m.decoding ?? 0 };
          if (m.kv) this.kvUse = m.kv;
        }
        else if (m.type === "tokens" || m.type === "text" || (m.type === "error" && this.tools.has(m.id))) this.settle(m);
        else this.dispatch(m);
      });
      // events of a worker already replaced (its late "exit" after an "error") must not touch its successor
      w.on("error", (e) => (!started ? reject(e) : w === this.worker && this.crashed(e.message)));
      w.on("exit", (code) => {
        if (!started) reject(new Error(`the model worker exited with code ${code} before loading`));
        else if (!this.closing && w === this.worker) this.crashed(`the model worker exited with code ${code}`);
      });
    });
  }

  /**
   * /tokenize and /detokenize: sent straight to the worker (no generation slot, no queue), answered between two
   * decode steps. Rejects with the worker's error event (e.g. a token id outside the vocabulary).
   */
  tool<T extends "tokens" | "text">(req: ToolRequest extends infer R ? (R extends unknown ? Omit<R, "id"> : never) : never): Promise<Extract<ToMain, { type: T }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.tools.set(id, { resolve: resolve as (m: ToMain) => void, reject });
      this.post({ ...req, id } as ToolRequest);
    });
  }

  private settle(m: ToMain & { id: number }): void {
    const p = this.tools.get(m.id);
    if (!p) return;
    this.tools.delete(m.id);
    if (m.type === "error") p.reject(m);
    else p.resolve(m);
  }

  /** A crash fails the jobs in flight (500) and starts a fresh worker; queued jobs wait for it. */
  private crashed(why: string): void {
    if (!this.ready || this.closing) return;
    for (const [id, p] of this.tools) p.reject({ type: "error", id, status: 500, message: `the model worker failed: ${why}`, param: null, code: "worker_crashed" });
    this.tools.clear();
    this.ready = false;
    this.log(`error: ${why}; restarting the model worker`);
    for (const e of this.active.values()) {
      this.counts.failed++;
      this.metrics.dropped(e.id); // no end event will come for it
      if (!e.cancelled) e.h.onError({ type: "error", id: e.id, status: 500, message: `generation failed: ${why}`, param: null, code: "worker_crashed" });
    }
    this.active.clear();
    this.spawn().catch((err: Error) => this.log(`error: the model worker could not restart: ${err.message}`));
  }

  private dispatch(m: Exclude<ToMain, { type: "ready" | "fatal" | "warning" | "memory" | "tokens" | "text" }>): void {
    const e = this.active.get(m.id);
    if (!e) return;
    this.metrics.event(m);
    // with n choices the request ends at its last choice's end
    if ((m.type === "end" && m.last !== false) || m.type === "error") {
      this.active.delete(m.id);
      if (m.type === "error") this.counts.failed++;
      // "aborted" counts generations the worker actually cut short, not clients that left after the end
      else if (m.finishReason === "abort") this.counts.aborted++;
      else this.counts.completed++;
      this.pump();
    }
    if (e.cancelled) return;
    if (m.type === "start") e.h.onStart(m);
    else if (m.type === "delta") e.h.onDelta(m);
    else if (m.type === "end") e.h.onEnd(m);
    else e.h.onError(m);
  }

  private pump(): void {
    while (this.ready && this.active.size < this.concurrency && this.queue.length) {
      const e = this.queue.shift()!;
      this.active.set(e.id, e);
      this.post({ type: "job", id: e.id, job: e.job });
    }
  }

  private post(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  /** Queues a job; `cancel()` (e.g. on client disconnect) drops it or aborts it. */
  submit(job: Job, h: JobHandlers): { cancel(): void; stop(): "dropped" | "stopping" } {
    const e: Entry = { id: this.nextId++, job, h, cancelled: false };
    this.metrics.submitted(e.id);
    this.queue.push(e);
    this.pump();
    /** Takes the job out of the queue if it is still waiting there; false when it is not. */
    const unqueue = (): boolean => {
      const qi = this.queue.indexOf(e);
      if (qi < 0) return false;
      this.queue.splice(qi, 1);
      this.counts.aborted++;
      this.metrics.dropped(e.id);
      return true;
    };
    return {
      cancel: () => {
        if (e.cancelled) return;
        e.cancelled = true;
        if (!unqueue() && this.active.has(e.id)) this.post({ type: "abort", id: e.id });
      },
      // a timeout: a running job is cut but its end still reaches the handlers; a queued one is dropped
      stop: () => {
        if (this.active.has(e.id)) {
          this.post({ type: "abort", id: e.id });
          return "stopping";
        }
        unqueue();
        e.cancelled = true;
        return "dropped";
      },
    };
  }

  /**
   * Per-request bookkeeping on this thread, as counts: every one is back to 0 once the server is idle, whatever
   * the requests did (finished, hung up, timed out, failed). What the reliability tests check for leaks.
   */
  bookkeeping(): { queued: number; active: number; tools: number; metricJobs: number } {
    return { queued: this.queue.length, active: this.active.size, tools: this.tools.size, metricJobs: this.metrics.tracked };
  }

  stats(): SchedulerStats {
    return { active: this.active.size, queued: this.queue.length, concurrency: this.concurrency, ...this.counts };
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
  }
}
