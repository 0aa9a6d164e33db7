/**
 * Engine throughput on this machine: prefill and decode tokens/s and peak RSS while loading, for stories260K and
 * a synthetic ~110M-parameter XVERSE-shaped model, on the TypeScript and native backends.
 * Usage: npm run bench:engine [-- --threads N --repeats R]
 * (The comparison against llama.cpp is `npm run bench`.)
 */
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { buildSyntheticModel, describe, type SyntheticSpec } from "./synthetic.js";
import { machineInfo } from "./machine.js";
import { loadConfig } from "../src/config.js";
import { openCheckpoint } from "../src/io/checkpoint.js";
import { XverseModel } from "../src/model/xverse.js";
import { defaultModelDir } from "../src/model/embedded.js";
import { resolveBackend } from "../src/model/load.js";
import { benchFailed, helpFromHeader } from "./cli.js";

helpFromHeader(import.meta.url);

const SPEC_100M: SyntheticSpec = { hidden: 768, layers: 12, heads: 12, kvHeads: 12, intermediate: 2048, vocab: 16000, context: 2048, seed: 3 };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** One measurement in this process: load, prefill P tokens, decode D tokens. */
async function measure(dir: string, backendKind: "ts" | "native", threads: number, P: number, D: number, repeats: number) {
  const backend = resolveBackend(backendKind, threads, () => {});
  if (backend.name !== backendKind) throw new Error(`backend ${backendKind} unavailable`);
  const t0 = performance.now();
  const model = XverseModel.fromSource(loadConfig(dir), openCheckpoint(dir), { backend });
  const loadMs = performance.now() - t0;
  const rssMiB = process.resourceUsage().maxRSS / 1024;
  const V = model.config.vocabSize;
  const prompt = Array.from({ length: P }, (_, i) => 3 + ((i * 7919) % (V - 3)));
  const pre: number[] = [], dec: number[] = [];
  const out = new Float32Array(V);
  for (let r = 0; r < repeats; r++) {
    const cache = model.newCache(P + D);
    const a = performance.now();
    model.forward(prompt, cache, { out });
    const b = performance.now();
    for (let i = 0; i < D; i++) model.forward([3 + (i % 100)], cache, { out });
    const c = performance.now();
    pre.push((P * 1000) / (b - a));
    dec.push((D * 1000) / (c - b));
  }
  return { loadMs, rssMiB, prefill: median(pre), decode: median(dec) };
}

async function main() {
  const { values } = parseArgs({ options: { threads: { type: "string" }, repeats: { type: "string" }, child: { type: "string" } } });
  if (values.child) {
    const [dir, kind, threads, P, D, R] = JSON.parse(values.child);
    process.stdout.write(JSON.stringify(await measure(dir, kind, threads, P, D, R)));
    return;
  }
  const m = machineInfo();
  const threads = Number(values.threads ?? m.physical);
  const repeats = Number(values.repeats ?? 3);
  console.log(`machine: ${m.cpu} · ${m.physical} physical / ${m.logical} logical cores · ${m.memGiB.toFixed(0)} GiB · threads ${threads} · median of ${repeats}`);
  const synthDir = buildSyntheticModel(join(tmpdir(), "xverse-bench-100m-f32"), SPEC_100M, "f32", (s) => console.log(s));
  const synthBf16 = buildSyntheticModel(join(tmpdir(), "xverse-bench-100m-bf16"), SPEC_100M, "bf16", (s) => console.log(s));
  console.log(`synthetic: ${describe(SPEC_100M)}`);
  const rows: string[] = ["| model | weights | backend | load ms | peak RSS MiB | prefill tok/s (P) | decode tok/s (D) |", "|---|---|---|---|---|---|---|"];
  const cases: [string, string, string, number, number][] = [
    ["stories260K", defaultModelDir(), "f32", 128, 128],
    ["synthetic-110M", synthDir, "f32", 128, 32],
    ["synthetic-110M", synthBf16, "bf16", 128, 32],
  ];
  for (const [name, dir, dtype, P, D] of cases) {
    for (const kind of ["ts", "native"] as const) {
      try {
        // a fresh process per case, so peak RSS is this load's alone
        const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), "--child", JSON.stringify([dir, kind, threads, P, D, repeats])], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
        const r = JSON.parse(out);
        rows.push(`| ${name} | ${dtype} | ${kind} | ${r.loadMs.toFixed(0)} | ${r.rssMiB.toFixed(0)} | ${r.prefill.toFixed(1)} (${P}) | ${r.decode.toFixed(1)} (${D}) |`);
      } catch (e) {
        rows.push(`| ${name} | ${dtype} | ${kind} | — | — | unavailable | unavailable |`);
      }
    }
  }
  console.log(rows.join("\n"));
}

main().catch(benchFailed);
