/**
 * Checkpoint loading cost: time and peak RSS to open a ~440 MB bf16 checkpoint and read every tensor, once as
 * model.safetensors and once as a torch.save-style pytorch_model.bin. Tensors are read one at a time and dropped,
 * as the model loader does when it converts or quantizes; peak RSS should stay near baseline + the largest tensor.
 *
 *   node dist/bench/checkpoint-load.js [DIR]      (default DIR: a fresh folder in the OS temp dir, removed after)
 *
 * Each measurement runs in its own child process so one run's heap does not inflate the next one's peak.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openCheckpoint } from "../src/io/checkpoint.js";
import { writeSafetensors, type TensorToWrite } from "../src/io/safetensors.js";
import type { Tensor } from "../src/tensor.js";

// XVERSE-shaped, scaled down: hidden 1024, intermediate 2816, 12 layers, vocab 32000 (≈ 220M bf16 values).
const H = 1024, I = 2816, L = 12, V = 32000;
function shapes(): Array<[string, number[]]> {
  const out: Array<[string, number[]]> = [["model.embed_tokens.weight", [V, H]]];
  for (let l = 0; l < L; l++) {
    const p = `model.layers.${l}.`;
    for (const n of ["q_proj", "k_proj", "v_proj", "o_proj"]) out.push([`${p}self_attn.${n}.weight`, [H, H]]);
    out.push([`${p}mlp.gate_proj.weight`, [I, H]], [`${p}mlp.up_proj.weight`, [I, H]], [`${p}mlp.down_proj.weight`, [H, I]]);
    out.push([`${p}input_layernorm.weight`, [H]], [`${p}post_attention_layernorm.weight`, [H]]);
  }
  out.push(["model.norm.weight", [H]], ["lm_head.weight", [V, H]]);
  return out;
}

function randomBf16(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Uint16Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; data[i] = 0x3c00 | (s & 0x3ff) | ((s >>> 16) & 0x8000); }
  return { dtype: "bf16", shape, data };
}

function generate(dir: string): void {
  const plan: TensorToWrite[] = shapes().map(([name, shape], i) => ({ name, dtype: "bf16", shape, load: () => randomBf16(shape, i + 1) }));
  writeSafetensors(join(dir, "model.safetensors"), plan);
  // A torch.save-style zip written entry by entry (stored, no compression; CRCs left 0 — the reader does not check them).
  const fd = openSync(join(dir, "pytorch_model.bin"), "w");
  let off = 0;
  const central: Buffer[] = [];
  const put = (name: string, data: Uint8Array) => {
    const nb = Buffer.from(name);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0); lh.writeUInt16LE(20, 4);
    lh.writeUInt32LE(data.length, 18); lh.writeUInt32LE(data.length, 22); lh.writeUInt16LE(nb.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0); cd.writeUInt16LE(20, 4); cd.writeUInt16LE(20, 6);
    cd.writeUInt32LE(data.length, 20); cd.writeUInt32LE(data.length, 24); cd.writeUInt16LE(nb.length, 28); cd.writeUInt32LE(off, 42);
    central.push(cd, nb);
    for (const b of [lh, nb, data]) { writeSync(fd, b); off += b.length; }
  };
  const parts: Buffer[] = [Buffer.from("\x80\x02ccollections\nOrderedDict\n)R", "latin1")];
  const str = (s: string) => { const b = Buffer.alloc(5); b.write("X"); b.writeUInt32LE(Buffer.byteLength(s), 1); return Buffer.concat([b, Buffer.from(s)]); };
  const int = (v: number) => { const b = Buffer.alloc(5); b.write("J"); b.writeInt32LE(v, 1); return b; };
  const tup = (xs: number[]) => Buffer.concat([Buffer.from("("), ...xs.map(int), Buffer.from("t")]);
  shapes().forEach(([name, shape], i) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const stride = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    parts.push(str(name), Buffer.from("ctorch._utils\n_rebuild_tensor_v2\n((", "latin1"), str("storage"),
      Buffer.from("ctorch\nBFloat16Storage\n", "latin1"), str(String(i)), str("cpu"), int(n), Buffer.from("tQ"),
      int(0), tup(shape), tup(stride), Buffer.from("\x89ccollections\nOrderedDict\n)RtRs", "latin1"));
  });
  parts.push(Buffer.from("."));
  put("archive/data.pkl", Buffer.concat(parts));
  shapes().forEach(([, shape], i) => { const t = randomBf16(shape, i + 1); put(`archive/data/${i}`, new Uint8Array(t.data.buffer)); });
  const cdStart = off;
  for (const b of central) { writeSync(fd, b); off += b.length; }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(central.length / 2, 8); end.writeUInt16LE(central.length / 2, 10);
  end.writeUInt32LE(off - cdStart, 12); end.writeUInt32LE(cdStart, 16);
  writeSync(fd, end);
  closeSync(fd);
}

/** Child: open + read every tensor, report JSON. */
function load(path: string): void {
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const src = openCheckpoint(path);
  const tOpen = performance.now() - t0;
  let bytes = 0, largest = 0, maxRss = 0, sum = 0;
  for (const name of src.names()) {
    const t = src.read(name);
    bytes += t.data.byteLength;
    largest = Math.max(largest, t.data.byteLength);
    sum = (sum + (t.data as Uint16Array)[t.data.length - 1]) | 0; // touch the data
    maxRss = Math.max(maxRss, process.memoryUsage().rss);
  }
  src.close();
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ ms, tOpen, bytes, largest, rss0, maxRss, peakRss: process.resourceUsage().maxRSS * 1024, sum }));
}

const MB = (b: number) => (b / 2 ** 20).toFixed(0) + " MiB";
if (process.argv[2] === "--load") {
  load(process.argv[3]);
} else {
  const dir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "xverse-load-"));
  const self = fileURLToPath(import.meta.url);
  try {
    const g0 = performance.now();
    generate(dir);
    console.error(`generated in ${((performance.now() - g0) / 1000).toFixed(1)} s`);
    for (const f of ["model.safetensors", "pytorch_model.bin"]) {
      const path = join(dir, f);
      // Read once to warm the page cache so the timing measures the reader, not the disk.
      execFileSync(process.execPath, [self, "--load", path]);
      const r = JSON.parse(execFileSync(process.execPath, [self, "--load", path], { encoding: "utf8" }));
      console.log(`${f}: ${MB(statSync(path).size)} file, ${shapes().length} tensors; open ${r.tOpen.toFixed(1)} ms, ` +
        `open+read all ${r.ms.toFixed(0)} ms (${(r.bytes / 2 ** 30 / (r.ms / 1000)).toFixed(2)} GiB/s); ` +
        `RSS before ${MB(r.rss0)}, peak ${MB(r.peakRss)} (largest tensor ${MB(r.largest)}, total read ${MB(r.bytes)})`);
    }
  } finally {
    if (!process.argv[2]) rmSync(dir, { recursive: true, force: true });
  }
}
