/**
 * `xverse serve` runs the HTTP server in this thread rather than on the process's main thread, for one reason:
 * a worker takes V8 resource limits. Streaming to many clients allocates fast; on the main thread V8 grows the
 * young generation to its maximum under load and keeps it, so RSS settles tens of MiB above its idle level.
 * Capped here, memory returns near its baseline after a burst (bench/server-load.ts shows both).
 * The main thread keeps the signals and the terminal; this thread owns the server (and starts the model worker).
 */
import { parentPort, workerData } from "node:worker_threads";
import { startServer, type ServeOptions } from "./http.js";

export type ServeThreadMessage =
  | { type: "listening"; url: string; model: { id: string; backend: string; contextLength: number; kv: string }; concurrency: number }
  | { type: "failed"; message: string; code: string | null }
  | { type: "closed" };

const port = parentPort!;
const opts = workerData as Omit<ServeOptions, "log"> & { drainMs?: number };

startServer({ ...opts, log: (line) => process.stderr.write(line + "\n") }).then(
  (srv) => {
    const m = srv.scheduler.model;
    port.postMessage({ type: "listening", url: srv.url, model: { id: m.id, backend: m.backend, contextLength: m.contextLength, kv: m.kv }, concurrency: srv.scheduler.concurrency } satisfies ServeThreadMessage);
    port.on("message", (msg: { type: string }) => {
      // SIGTERM / SIGINT: let running generations finish (up to the deadline), then close
      if (msg.type === "close") void srv.drain(opts.drainMs ?? 0).then(() => port.postMessage({ type: "closed" } satisfies ServeThreadMessage));
    });
  },
  (e: Error & { code?: string }) => {
    port.postMessage({ type: "failed", message: e.message, code: typeof e.code === "string" ? e.code : null } satisfies ServeThreadMessage);
  },
);
