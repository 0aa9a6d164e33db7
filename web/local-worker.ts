/**
 * The Web Worker /local runs the model in (bundled as dist/web/local-worker.js): the backend, the weights and
 * generation live here, so a large model does not freeze the page, whose main thread only renders. It answers
 * worker-host.ts's messages: start, load, complete, chat (streamed back as text / tool_calls / usage events)
 * and stop.
 */
import { LocalHost } from "./local-host.js";
import type { ToWorker } from "./worker-host.js";

interface WorkerScope {
  postMessage(msg: unknown): void;
  onmessage: ((ev: MessageEvent) => void) | null;
}
const scope = globalThis as unknown as WorkerScope;
const host = new LocalHost("worker");
const runs = new Map<number, AbortController>();

const fail = (id: number, e: unknown) => scope.postMessage({ id, type: "error", message: (e as Error)?.message ?? String(e), name: (e as Error)?.name });

async function handle(m: ToWorker): Promise<void> {
  const { id } = m;
  try {
    switch (m.type) {
      case "start":
        scope.postMessage({ id, type: "result", value: await host.start(m.opts) });
        return;
      case "load":
        scope.postMessage({ id, type: "result", value: await host.load(m.src, (done, total) => scope.postMessage({ id, type: "progress", done, total })) });
        return;
      case "stop":
        runs.get(m.target)?.abort();
        return;
      case "complete":
      case "chat": {
        const controller = new AbortController();
        runs.set(id, controller);
        const ev = {
          onText: (text: string) => scope.postMessage({ id, type: "text", text }),
          onToolCalls: (calls: unknown) => scope.postMessage({ id, type: "tool_calls", calls }),
          onUsage: (n: number) => scope.postMessage({ id, type: "usage", n }),
        };
        try {
          if (m.type === "chat") await host.engine.chat({ ...m.req, signal: controller.signal }, ev);
          else await host.engine.complete({ ...m.req, signal: controller.signal }, ev);
        } finally {
          runs.delete(id);
        }
        scope.postMessage({ id, type: "result" });
        return;
      }
    }
  } catch (e) {
    fail(id, e);
  }
}

scope.onmessage = (ev) => void handle(ev.data as ToWorker);
