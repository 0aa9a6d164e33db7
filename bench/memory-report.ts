/**
 * Summarizes a bench/heap-probe.ts folder (node dist/bench/memory-report.js DIR [--every 5]): RSS over time next to
 * what each thread's JS heap and external memory account for, and, from the smaps copies (HEAP_PROBE_SMAPS), the
 * process's anonymous memory by kind — V8 pages, glibc malloc (the brk heap and the per-thread 64 MiB arenas),
 * the rest — so growth outside every JS heap can be named.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

const MiB = 2 ** 20;
const f1 = (b: number) => (b / MiB).toFixed(1).padStart(6);

interface Sample { t: number; who: string; rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number; RssAnon?: number; snapshot?: string }

/** Resident kB of one /proc/PID/smaps copy by kind of mapping. */
export function smapsKinds(text: string): Record<string, number> {
  const kinds: Record<string, number> = {};
  let kind = "";
  for (const l of text.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(l);
    if (m) {
      const start = parseInt(m[1], 16), name = m[4].trim();
      // glibc's non-main arenas are 64 MiB-aligned heaps; V8 allocates its pages in 256 KiB multiples
      kind = name === "[heap]" ? "malloc brk" : name.startsWith("[stack") ? "stack" : name.startsWith("/") ? "files" : name ? name
        : start % (64 * MiB) === 0 && m[3].startsWith("rw") ? "malloc arenas" : (parseInt(m[2], 16) - start) % (256 * 1024) === 0 ? "anon (V8 pages…)" : "anon other";
    } else if (l.startsWith("Rss:")) kinds[kind] = (kinds[kind] ?? 0) + Number(l.split(/\s+/)[1]);
  }
  return kinds;
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { every: { type: "string", default: "5" } } });
  const dir = positionals[0];
  const rows = readFileSync(join(dir, "memory.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Sample);
  const t0 = rows[0].t, every = Number(values.every);
  const last = new Map<string, Sample>();
  let k = 0;
  console.log("     s    rss   anon | per thread: heap used / total, external");
  for (const r of rows) {
    const s = ((r.t - t0) / 1000).toFixed(0).padStart(6);
    if (r.snapshot) { console.log(`${s} snapshot ${r.snapshot} (${r.who})`); continue; }
    last.set(r.who, r);
    if (r.who !== "main" || k++ % every) continue;
    const threads = [...last.values()].map((x) => `${x.who} ${f1(x.heapUsed)} /${f1(x.heapTotal)} ${f1(x.external)}`).join(" |");
    console.log(`${s} ${f1(r.rss)} ${f1((r.RssAnon ?? 0) * 1024)} | ${threads}`);
  }
  const smaps = readdirSync(dir).filter((f) => /^smaps-\d+\.txt$/.test(f)).sort();
  if (!smaps.length) return;
  console.log("\nanonymous memory by kind, MiB");
  for (const f of smaps) {
    const kinds = smapsKinds(readFileSync(join(dir, f), "utf8"));
    const t = ((Number(/\d+/.exec(f)![0]) - t0) / 1000).toFixed(0).padStart(6);
    console.log(`${t} ` + Object.entries(kinds).filter(([, kb]) => kb > 512).sort().map(([n, kb]) => `${n} ${(kb / 1024).toFixed(1)}`).join(" · "));
  }
}

if (process.argv[1]?.endsWith("memory-report.js")) main();
