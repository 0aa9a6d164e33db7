/**
 * Load-to-first-token of one engine in a fresh process: `node <script> --load-child ours|llama PATH THREADS` opens
 * the file, prefills 16 tokens and picks the first generated token, then prints a LoadResult as JSON. A fresh
 * process each time, so no load work hides in an already-warm engine; RSS is the child's after the first token.
 * Bench scripts call measureLoad(script, …) and route `--load-child` to loadChildMain().
 */
import { execFileSync } from "node:child_process";
import { loadModel } from "../src/model/load.js";
import { argmax } from "../src/generate/processors.js";
import { contextThreads, median, openLlamaCpp } from "./machine.js";
import { syntheticTokens } from "./synthetic.js";

/** Milliseconds to load, milliseconds from start to the first token, RSS (MiB) after it. */
export interface LoadResult { loadMs: number; firstMs: number; rssMiB: number }


/** The child side: reads `--load-child ENGINE PATH THREADS` from argv, prints one JSON line, exits. */
export async function loadChildMain(): Promise<void> {
  const i = process.argv.indexOf("--load-child");
  const [engine, path, threadsArg] = process.argv.slice(i + 1, i + 4);
  const threads = Number(threadsArg);
  const prompt = syntheticTokens(16, 1000);
  const t0 = performance.now();
  let loaded = 0;
  if (engine === "ours") {
    const { model } = await loadModel(path, { backend: "auto", threads, onWarning: () => {} });
    loaded = performance.now();
    argmax(model.forward(prompt, model.newCache(32)));
  } else if (engine === "llama") {
    const { llama } = await openLlamaCpp(threads);
    const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    const ctx = await model.createContext({ contextSize: 64, batchSize: 16, threads: contextThreads(threads), sequences: 1 });
    loaded = performance.now();
    for await (const _t of ctx.getSequence().evaluate(prompt, { temperature: 0 })) break;
  } else {
    throw new Error(`--load-child: engine must be ours or llama, got ${engine}`);
  }
  const r: LoadResult = { loadMs: loaded - t0, firstMs: performance.now() - t0, rssMiB: process.memoryUsage().rss / 2 ** 20 };
  process.stdout.write(JSON.stringify(r) + "\n");
  process.exit(0);
}

/** Median of `n` fresh-process loads by `script` (after one unmeasured load that warms the page cache). */
export function measureLoad(script: string, engine: "ours" | "llama", path: string, threads: number, n = 3): LoadResult {
  const once = (): LoadResult => {
    const out = execFileSync(process.execPath, [script, "--load-child", engine, path, String(threads)], {
      encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20,
    });
    return JSON.parse(out.trim().split("\n").pop()!) as LoadResult;
  };
  once();
  const rs = Array.from({ length: n }, once);
  return { loadMs: median(rs.map((r) => r.loadMs)), firstMs: median(rs.map((r) => r.firstMs)), rssMiB: median(rs.map((r) => r.rssMiB)) };
}
