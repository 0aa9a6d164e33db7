// Paged attention kernel throughput (not a test), on a 1.2B-shaped model: 16 heads (16 kv heads), headDim 128,
// 16 layers, KV blocks of 32 tokens.
//  - decode: one query token against S = 4096 cached tokens, every layer in turn (one token's attention); each
//    layer's blocks are distinct memory, so the keys stream from DRAM as in a real decode.
//  - prefill: an 8K context in chunks of T = 512 (kvWrite, then attention of the chunk against everything so far);
//    GFLOP/s counts 4 · headDim FLOPs per (query, key, head) pair that the causal mask keeps.
// Usage: npx tsc -p . && node native/bench-attention.mjs [--isa avx2] [--threads 1,2] [--types f16,q8_0]
import { loadNativeBackend } from "../dist/src/backend/native/index.js";
import { KvPool } from "../dist/src/kv/pool.js";
import { randArray, rng } from "../dist/test/native/random.js";

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const nb = loadNativeBackend();
if (!nb) throw new Error("addon not built");
if (opt("--isa", null)) nb.setIsa(opt("--isa"));
const threadList = opt("--threads", "1,2").split(",").map(Number);
const types = opt("--types", "f16,q8_0").split(",");
const [nHeads, nKv, hd, nLayers, B] = [16, 16, 128, 16, 32];
const scale = 1 / Math.sqrt(hd);

/** Best of several timed runs (the machine is shared: the minimum is the least disturbed). */
function best(fn, minMs = 1500, minRuns = 5) {
  fn();
  let t = Infinity;
  const start = performance.now();
  for (let n = 0; n < minRuns || performance.now() - start < minMs; n++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t;
}

console.log(`isa ${nb.isa}; ${nHeads} heads (kv ${nKv}) × ${hd}, ${nLayers} layers, block ${B}`);
for (const type of types) {
  // --- decode at S = 4096 ---
  const S = 4096;
  const pool = new KvPool({ type, nLayers, nKvHeads: nKv, headDim: hd, blockSize: B, prefixCaching: false });
  const seq = pool.sequence();
  seq.reserve(S);
  const r = rng(1);
  const kvd = nKv * hd;
  const k = randArray(512 * kvd, r), v = randArray(512 * kvd, r);
  for (let l = 0; l < nLayers; l++) for (let s0 = 0; s0 < S; s0 += 512) nb.kvWrite(seq.view(l), k, v, s0, 512);
  const views = Array.from({ length: nLayers }, (_, l) => seq.view(l));
  const q = randArray(nHeads * hd, r), out = new Float32Array(nHeads * hd);
  const p = { T: 1, past: S - 1, nHeads, nKvHeads: nKv, headDim: hd, scale };
  const kvBytes = (pool.layout.bytesPerToken * S) / nLayers; // one layer's K and V
  const line = [`${type.padEnd(5)} decode S=${S}:`];
  for (const th of threadList) {
    nb.setThreads(th);
    const ms = best(() => { for (const view of views) nb.attention(out, q, view, p); });
    line.push(`${th}t ${(ms / nLayers).toFixed(3)} ms/layer, ${ms.toFixed(2)} ms/token (${((kvBytes * nLayers) / ms / 1e6).toFixed(1)} GB/s)`);
  }
  console.log(line.join(" | "));
  seq.release();

  // --- prefill: T = 512 chunks into an 8K context, one layer ---
  const ctx = 8192, T = 512;
  const pool1 = new KvPool({ type, nLayers: 1, nKvHeads: nKv, headDim: hd, blockSize: B, prefixCaching: false });
  const s1 = pool1.sequence();
  s1.reserve(ctx);
  const view = s1.view(0);
  const qc = randArray(T * nHeads * hd, r), oc = new Float32Array(T * nHeads * hd);
  let flops = 0;
  for (let past = 0; past < ctx; past += T) flops += 4 * hd * nHeads * (T * past + (T * (T + 1)) / 2);
  const pl = [`${type.padEnd(5)} prefill ${ctx / T}×${T} into ${ctx}:`];
  for (const th of threadList) {
    nb.setThreads(th);
    let attnMs = 0, writeMs = 0;
    const run = () => {
      attnMs = 0;
      writeMs = 0;
      for (let past = 0; past < ctx; past += T) {
        const t0 = performance.now();
        nb.kvWrite(view, k, v, past, T);
        const t1 = performance.now();
        nb.attention(oc, qc, view, { T, past, nHeads, nKvHeads: nKv, headDim: hd, scale });
        writeMs += t1 - t0;
        attnMs += performance.now() - t1;
      }
    };
    let bestAttn = Infinity, bestWrite = Infinity;
    for (let i = 0; i < 3; i++) {
      run();
      bestAttn = Math.min(bestAttn, attnMs);
      bestWrite = Math.min(bestWrite, writeMs);
    }
    pl.push(`${th}t attention ${bestAttn.toFixed(0)} ms = ${(flops / bestAttn / 1e6).toFixed(1)} GFLOP/s, kvWrite ${bestWrite.toFixed(1)} ms`);
  }
  console.log(pl.join(" | "));
  s1.release();
}
