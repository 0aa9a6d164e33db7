/**
 * Tokenizer throughput: a ~1 MB multilingual text (built deterministically from the golden strings, the eval
 * samples and seeded random strings) encoded as one string and line by line with the XVERSE-style
 * tokenizer.json — ours, the Rust `tokenizers` package and `@huggingface/tokenizers` (transformers.js), same run.
 * Median of 5 interleaved repeats. Last line: `speedup_vs_rust: X.XX` (one-string case, Rust time / our time).
 */
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { loadTokenizer } from "../src/tokenizer/load.js";
import { fixture, importPeer, requirePeer } from "../test/helpers/peers.js";
import { corpusLines, randomString, rng } from "../test/tokenizer/random-text.js";
import { benchFailed, helpFromHeader } from "./cli.js";

helpFromHeader(import.meta.url);

const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const TARGET_BYTES = 1_000_000;

function buildText(): string {
  const r = rng(20240601);
  const lines = corpusLines();
  const out: string[] = [];
  let bytes = 0;
  while (bytes < TARGET_BYTES) {
    // mostly real text, some random noise (emoji, rare CJK, whitespace runs), no special tokens
    const line = r() < 0.8 ? lines[Math.floor(r() * lines.length)] : randomString(r, ["<"]);
    out.push(line.replaceAll("\n", " "));
    bytes += Buffer.byteLength(line, "utf8") + 1;
  }
  return out.join("\n");
}

/**
 * Times every case REPEATS times, interleaved (case 1, case 2, …, then again), so that load from other processes
 * on a shared machine hits all of them alike; returns the median seconds per case.
 */
async function medians(cases: (() => unknown | Promise<unknown>)[]): Promise<number[]> {
  for (const fn of cases) await fn(); // warm-up (JIT, caches)
  const times: number[][] = cases.map(() => []);
  for (let r = 0; r < REPEATS; r++) {
    for (let c = 0; c < cases.length; c++) {
      const t = performance.now();
      await cases[c]();
      times[c].push((performance.now() - t) / 1000);
    }
  }
  return times.map((ts) => ts.sort((a, b) => a - b)[Math.floor(ts.length / 2)]);
}

async function main(): Promise<void> {
  const file = fixture("golden", "tokenizer-xverse-style", "tokenizer.json");
  const text = buildText();
  const lines = text.split("\n");
  const mb = Buffer.byteLength(text, "utf8") / 1e6;
  const cpu = cpus();
  console.log(`machine: ${cpu[0]?.model ?? "unknown CPU"}, ${cpu.length} logical cores, node ${process.version}`);
  console.log(`text: ${mb.toFixed(2)} MB, ${lines.length} lines, ${[...text].length} code points; tokenizer: ${file}`);
  console.log(`median of ${REPEATS} interleaved runs per case (after one warm-up); wall time\n`);

  const ours = loadTokenizer(file);
  const { Tokenizer: RustTokenizer } = requirePeer("tokenizers");
  const rust = RustTokenizer.fromFile(file);
  const jsMod = await importPeer("@huggingface/tokenizers");
  const JsTokenizer = jsMod.Tokenizer ?? jsMod.default?.Tokenizer;
  const js = new JsTokenizer(JSON.parse(readFileSync(file, "utf8")), {});

  // Sanity: all three see the same text; ours must equal Rust on it.
  const oursIds = ours.encode(text).ids;
  const rustIds: number[] = (await rust.encode(text)).getIds();
  const same = oursIds.length === rustIds.length && oursIds.every((x, i) => x === rustIds[i]);
  console.log(`ids identical to Rust on the whole text: ${same} (${oursIds.length} tokens)\n`);

  const [tOursOne, tRustOne, tJsOne, tOursLines, tRustLines, tRustBatch, tJsLines] = await medians([
    () => ours.encode(text),
    () => rust.encode(text),
    () => js.encode(text),
    () => { for (const l of lines) ours.encode(l); },
    async () => { for (const l of lines) await rust.encode(l); },
    () => rust.encodeBatch(lines),
    () => { for (const l of lines) js.encode(l); },
  ]);
  const rows: [string, number, number][] = [
    ["ours (TypeScript)", tOursOne, tOursLines],
    ["Rust tokenizers 0.23 (await per line)", tRustOne, tRustLines],
    ["Rust tokenizers encodeBatch (all threads)", NaN, tRustBatch],
    ["@huggingface/tokenizers 0.2", tJsOne, tJsLines],
  ];
  const fmt = (t: number): string => (Number.isNaN(t) ? "      -" : `${(mb / t).toFixed(2).padStart(7)} MB/s (${t.toFixed(3)} s)`);
  console.log(`${"".padEnd(44)} ${"one string".padEnd(24)} lines`);
  for (const [name, one, ls] of rows) console.log(`${name.padEnd(44)} ${fmt(one).padEnd(24)} ${fmt(ls)}`);
  console.log();
  console.log(`speedup_vs_transformers_js: ${(tJsOne / tOursOne).toFixed(2)} (one string), ${(tJsLines / tOursLines).toFixed(2)} (lines)`);
  console.log(`speedup_vs_rust_lines: ${(tRustLines / tOursLines).toFixed(2)} (await per line), ${(tRustBatch / tOursLines).toFixed(2)} (vs encodeBatch)`);
  console.log(`speedup_vs_rust: ${(tRustOne / tOursOne).toFixed(2)}`);
}

main().catch(benchFailed);
