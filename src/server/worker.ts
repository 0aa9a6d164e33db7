/**
 * The generation thread: loads the model once, then runs jobs the HTTP thread sends, reporting tokens back.
 * Keeping all model work here is what lets the HTTP thread answer /health in milliseconds mid-generation.
 */
import { existsSync, statSync } from "node:fs";
import { basename } from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { loadChatSettings, NO_CHAT_SETTINGS } from "../chat/prompt.js";
import { loadModel, type LoadModelOptions } from "../model/load.js";
import { Engine } from "./engine.js";
import type { ToMain, ToWorker } from "./protocol.js";

export interface WorkerInit {
  /** Model directory or .gguf; undefined = the embedded stories260K. */
  path?: string;
  load: Omit<LoadModelOptions, "onWarning" | "backend"> & { backend?: "auto" | "ts" | "native" | "webgpu" };
  /** Chat format override (v1 / v2 / template). */
  format?: string | null;
  /** The id /v1/models reports; default: the model folder's name. */
  modelId?: string;
}

const port = parentPort!;
const post = (m: ToMain) => port.postMessage(m);
const init = workerData as WorkerInit;

async function main(): Promise<void> {
  const loaded = await loadModel(init.path, { ...init.load, onWarning: (message) => post({ type: "warning", message }) });
  const dir = existsSync(loaded.path) && statSync(loaded.path).isDirectory();
  const settings = dir ? loadChatSettings(loaded.path) : NO_CHAT_SETTINGS;
  const id = init.modelId ?? basename(loaded.path).replace(/\.gguf$/i, "");
  const engine = new Engine(loaded, id, settings, init.format ?? null);
  const running = new Map<number, AbortController>();
  port.on("message", (m: ToWorker) => {
    if (m.type === "abort") {
      running.get(m.id)?.abort();
      return;
    }
    if (m.type === "tokenize" || m.type === "detokenize") {
      post(engine.tool(m));
      return;
    }
    const ac = new AbortController();
    running.set(m.id, ac);
    void engine.run(m.id, m.job, ac.signal, post).finally(() => running.delete(m.id));
  });
  post({ type: "ready", model: engine.info() });
  setInterval(() => {
    const m = process.memoryUsage();
    const k = engine.batch.pool.stats();
    const kv = { usedBlocks: k.usedBlocks, cachedBlocks: k.cachedBlocks, capacityBlocks: k.capacityBlocks, blockSize: engine.batch.pool.blockSize, bytes: k.bytes };
    post({ type: "memory", heapUsed: m.heapUsed, heapTotal: m.heapTotal, maxBatch: engine.batch.maxBatchSeen, kv, jobs: running.size, decoding: engine.batch.active });
  }, 1000).unref();
}

main().catch((e: unknown) => post({ type: "fatal", message: (e as Error)?.message ?? String(e) }));
