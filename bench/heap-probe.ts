/**
 * A preload (`node --import ./dist/bench/heap-probe.js …`) for hunting memory growth in `xverse serve` without
 * touching the server: it runs in the main thread and, because workers inherit execArgv, in the model worker too.
 *
 * - Every `HEAP_PROBE_MS` (default 2000) each thread appends one JSON line to `$HEAP_PROBE_DIR/memory.jsonl`: its
 *   process.memoryUsage() split (rss is the whole process; heapUsed, external, arrayBuffers are the thread's own
 *   isolate) and V8's space sizes; the main thread adds /proc/self/status (RssAnon / RssFile) and the number of
 *   anonymous mappings, so growth outside every JS heap (malloc arenas, addon buffers) shows up as the difference.
 * - SIGUSR2 to the process: each thread writes a heap snapshot `$HEAP_PROBE_DIR/<tag>-<thread>.heapsnapshot`
 *   (tag from `$HEAP_PROBE_DIR/tag`, default a counter), after a full GC, so snapshots count retained objects.
 *
 * With `HEAP_PROBE_SMAPS=k` the main thread also copies /proc/self/smaps to the folder every k samples.
 *
 * The main thread passes the signal on to workers by a BroadcastChannel (signals reach only the main thread).
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { getHeapSpaceStatistics, setFlagsFromString, writeHeapSnapshot } from "node:v8";
import { runInNewContext } from "node:vm";
import { BroadcastChannel, isMainThread, threadId } from "node:worker_threads";

const dir = process.env.HEAP_PROBE_DIR;
if (dir) {
  const who = isMainThread ? "main" : `worker${threadId}`;
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const line = (o: object) => appendFileSync(join(dir, "memory.jsonl"), JSON.stringify(o) + "\n");
  const sample = () => {
    const m = process.memoryUsage();
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
    const o: Record<string, unknown> = { t: Date.now(), who, ...m, spaces };
    if (isMainThread) {
      const st = readFileSync("/proc/self/status", "utf8");
      for (const k of ["RssAnon", "RssFile", "VmRSS", "Threads"]) o[k] = Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(st)?.[1] ?? NaN);
      o.anonMaps = readFileSync("/proc/self/maps", "utf8").split("\n").filter((l) => /^\S+ rw.p 00000000 00:00 0\s*$/.test(l)).length;
      // the whole mapping table now and then, for attributing native growth offline (malloc arenas, stacks…)
      if (smapsEvery && ++ticks % smapsEvery === 0) writeFileSync(join(dir, `smaps-${Date.now()}.txt`), readFileSync("/proc/self/smaps"));
    }
    line(o);
  };
  let ticks = 0;
  const smapsEvery = Number(process.env.HEAP_PROBE_SMAPS ?? 0);
  setInterval(sample, Number(process.env.HEAP_PROBE_MS ?? 2000)).unref();
  let n = 0;
  const snap = () => {
    const tagFile = join(dir, "tag");
    const tag = existsSync(tagFile) ? readFileSync(tagFile, "utf8").trim() : String(n++);
    gc();
    sample();
    writeHeapSnapshot(join(dir, `${tag}-${who}.heapsnapshot`));
    line({ t: Date.now(), who, snapshot: tag });
  };
  const ch = new BroadcastChannel("xverse-heap-probe");
  ch.unref();
  if (isMainThread) {
    process.on("SIGUSR2", () => { ch.postMessage("snap"); snap(); });
  } else ch.onmessage = () => snap();
}
