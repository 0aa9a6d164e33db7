/**
 * The page's side of the model worker (local-worker.ts): a Host whose every call is a message. Streams come back
 * as events of the call's id; an AbortSignal becomes a "stop" message. If the worker cannot start (no module
 * workers, the script missing), start() rejects and the page runs the model in the tab instead.
 */
import type { ChatRequest, CompletionRequest, Engine, StreamEvents } from "./engine.js";
import type { BackendInfo, Host, ModelInfo, ModelSource, StartOptions } from "./local-host.js";
import type { ToolCallOut } from "./store.js";

type Plain<T> = Omit<T, "signal">;
export type ToWorker =
  | { id: number; type: "start"; opts: StartOptions }
  | { id: number; type: "load"; src: ModelSource }
  | { id: number; type: "complete"; req: Plain<CompletionRequest> }
  | { id: number; type: "chat"; req: Plain<ChatRequest> }
  | { id: number; type: "stop"; target: number };

type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;

type FromWorker =
  | { id: number; type: "result"; value?: unknown }
  | { id: number; type: "error"; message: string; name?: string }
  | { id: number; type: "progress"; done: number; total: number }
  | { id: number; type: "text"; text: string }
  | { id: number; type: "tool_calls"; calls: ToolCallOut[] }
  | { id: number; type: "usage"; n: number };

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  on?(m: FromWorker): void;
}

export class WorkerHost implements Host {
  readonly where = "worker" as const;
  private readonly worker: Worker;
  private next = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(url: URL) {
    this.worker = new Worker(url, { type: "module" });
    this.worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      const m = ev.data, p = this.pending.get(m.id);
      if (!p) return;
      if (m.type === "result") { this.pending.delete(m.id); p.resolve(m.value); }
      else if (m.type === "error") {
        this.pending.delete(m.id);
        const e = new Error(m.message);
        if (m.name) e.name = m.name;
        p.reject(e);
      } else p.on?.(m);
    };
    // a script that fails to load or throws at the top: every call in flight fails with it
    this.worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      const e = new Error(`the model worker failed: ${ev.message || "its script did not load"}`);
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
  }

  private call<T>(msg: WithoutId<ToWorker>, on?: (m: FromWorker) => void, id = this.next++): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, on });
      this.worker.postMessage({ ...msg, id });
    });
  }

  terminate(): void {
    this.worker.terminate();
  }

  start(opts: StartOptions): Promise<BackendInfo> {
    return this.call({ type: "start", opts });
  }

  load(src: ModelSource, onProgress: (done: number, total: number) => void): Promise<{ model: ModelInfo; backend: BackendInfo }> {
    return this.call({ type: "load", src }, (m) => { if (m.type === "progress") onProgress(m.done, m.total); });
  }

  private stream(type: "chat" | "complete", req: ChatRequest | CompletionRequest, ev: StreamEvents): Promise<void> {
    const { signal, ...plain } = req;
    const id = this.next++;
    const stop = () => this.worker.postMessage({ id: this.next++, type: "stop", target: id });
    signal.addEventListener("abort", stop, { once: true });
    const done = this.call<void>((type === "chat" ? { type, req: plain as Plain<ChatRequest> } : { type, req: plain as Plain<CompletionRequest> }), (m) => {
      if (m.type === "text") ev.onText(m.text);
      else if (m.type === "tool_calls") ev.onToolCalls?.(m.calls);
      else if (m.type === "usage") ev.onUsage?.(m.n);
    }, id);
    if (signal.aborted) stop();
    return done.finally(() => signal.removeEventListener("abort", stop));
  }

  readonly engine: Engine = {
    chat: (req, ev) => this.stream("chat", req, ev),
    complete: (req, ev) => this.stream("complete", req, ev),
  };
}
