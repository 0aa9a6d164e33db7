/**
 * Child process for test/io/mmap.test.ts (and the load-time measurement): loads a model through loadModel,
 * runs one forward of 2 tokens, and prints one JSON line — load and forward time, RSS (and, on Linux, its
 * anonymous and file-backed parts from /proc/self/status), and the logits' first values.
 * argv: MODEL_PATH mmap|read BACKEND
 */
import { readFileSync } from "node:fs";
import { loadModel } from "../../src/model/load.js";

const [path, mode, backend] = process.argv.slice(2);

function statusKb(field: string): number | null {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

const t0 = performance.now();
const { model } = await loadModel(path, { backend: backend as "ts" | "native" | "auto", mmap: mode === "mmap", onWarning: () => {} });
const loadMs = performance.now() - t0;
const t1 = performance.now();
const logits = model.forward([1, 2], model.newCache(8));
const forwardMs = performance.now() - t1;
process.stdout.write(JSON.stringify({
  loadMs, forwardMs, rss: process.memoryUsage().rss, rssAnon: statusKb("RssAnon"), rssFile: statusKb("RssFile"),
  backend: model.backend.name, logits: Array.from(logits.subarray(0, 8)),
}) + "\n");
