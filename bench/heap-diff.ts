/**
 * Compares V8 heap snapshots by constructor: count and self size per node name, and what grew between the first
 * and each later one (node dist/bench/heap-diff.js A.heapsnapshot B.heapsnapshot [C…] [--top 30]). Snapshots come
 * from bench/heap-probe.ts (after a full GC, so they hold retained objects only). Memory by category (code,
 * strings, arrays, closures, ArrayBuffer backing stores) is printed too: growth in a category with no constructor
 * growing points to where to look.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { parseArgs } from "node:util";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] }; node_count: number };
  nodes: number[];
  strings: string[];
}

/** Per "type:name" key: objects and their shallow bytes. */
export function histogram(file: string): Map<string, { count: number; size: number }> {
  const s = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const W = f.length, iType = f.indexOf("type"), iName = f.indexOf("name"), iSize = f.indexOf("self_size");
  const h = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < s.nodes.length; i += W) {
    const type = types[s.nodes[i + iType]];
    // strings and code are grouped by type (their names are their contents), objects by constructor
    const name = type === "object" || type === "closure" || type === "native" ? s.strings[s.nodes[i + iName]] : "";
    const key = `${type}:${name.slice(0, 60)}`;
    const e = h.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += s.nodes[i + iSize];
    h.set(key, e);
  }
  return h;
}

function main(): void {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "30" } } });
  const top = Number(values.top);
  const hs = positionals.map((p) => ({ name: basename(p), h: histogram(p) }));
  const total = (h: Map<string, { count: number; size: number }>) => [...h.values()].reduce((a, e) => ({ count: a.count + e.count, size: a.size + e.size }), { count: 0, size: 0 });
  for (const { name, h } of hs) {
    const t = total(h);
    console.log(`${name}: ${t.count} objects, ${(t.size / 2 ** 20).toFixed(2)} MiB`);
  }
  const [a, ...rest] = hs;
  for (const b of rest) {
    console.log(`\n${a.name} → ${b.name}: largest growth by count`);
    const keys = new Set([...a.h.keys(), ...b.h.keys()]);
    const d = [...keys].map((k) => {
      const x = a.h.get(k) ?? { count: 0, size: 0 }, y = b.h.get(k) ?? { count: 0, size: 0 };
      return { k, dc: y.count - x.count, ds: y.size - x.size, c: y.count };
    });
    for (const e of d.sort((p, q) => q.dc - p.dc).slice(0, top)) console.log(`  ${String(e.dc).padStart(8)} objs ${String(e.ds).padStart(10)} B  (now ${e.c})  ${e.k}`);
    console.log(`  … by bytes`);
    for (const e of d.sort((p, q) => q.ds - p.ds).slice(0, top / 2)) console.log(`  ${String(e.dc).padStart(8)} objs ${String(e.ds).padStart(10)} B  (now ${e.c})  ${e.k}`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) main();
