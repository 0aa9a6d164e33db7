/**
 * Every write path under injected faults (issue 17's fault matrix): a disk that fills part-way (ENOSPC, the last
 * write partial) and a read-only destination (EROFS). Each must fail with one clear XverseError, leave no partial
 * file under the final name and no temp file behind, keep the previous output byte for byte, and succeed when
 * rerun without the fault. SIGKILL in the middle of a write is in crash-faults.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig, readJsonFile } from "../../src/config.js";
import { XverseError } from "../../src/errors.js";
import { ResultCache } from "../../src/eval/cache.js";
import { writeFileAtomic } from "../../src/eval/report.js";
import { exportGguf } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { readGguf } from "../../src/io/gguf.js";
import { openSafetensors, writeSafetensors } from "../../src/io/safetensors.js";
import { quantizeCheckpoint } from "../../src/quant/convert.js";
import { AdamW } from "../../src/train/adamw.js";
import { loadTrainCheckpoint, saveTrainCheckpoint } from "../../src/train/checkpoint.js";
import { writeModelDir } from "../../src/train/finetune.js";
import { injectFault, snapshot, type Fault } from "../helpers/faults.js";
import { fixture } from "../helpers/peers.js";
import { randomModel, tinyConfig } from "../train/helpers.js";

const tiny = fixture("golden", "tiny-xverse");
const work = mkdtempSync(join(tmpdir(), "xv-faults-"));
const model = join(work, "model");
mkdirSync(model);
for (const f of ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json"]) copyFileSync(join(tiny, f), join(model, f));
test.after(() => rmSync(work, { recursive: true, force: true }));

interface WritePath {
  name: string;
  /** Writes its output into `dir` (the destination directory). */
  write(dir: string): void;
  /** Reads the output back (throws if it is not a complete, valid output). */
  check(dir: string): void;
}

const trainCfg = tinyConfig();
const opt = () => { const o = new AdamW({ lr: 1e-3 }); return o; };
const state = (step: number) => ({ step, epoch: 0, batchInEpoch: step, tokens: 10 * step, history: [{ step, epoch: 0, lr: 1e-3, tokens: 10 * step, loss: 1 / (step + 1) }] });

const PATHS: WritePath[] = [
  {
    name: "quantize (int8 directory)",
    write: (dir) => { const src = openCheckpoint(model); try { quantizeCheckpoint({ source: src, modelDir: model, outDir: join(dir, "q8"), bits: 8 }); } finally { src.close(); } },
    check: (dir) => { const s = openSafetensors(join(dir, "q8", "model.safetensors")); s.close(); assert.equal(readJsonFile(join(dir, "q8", "config.json")).quantization_bit, 8); },
  },
  {
    name: "convert (GGUF q8_0)",
    write: (dir) => {
      const src = openCheckpoint(model);
      try { exportGguf(src, parseConfig(readJsonFile(join(model, "config.json")), "config.json"), join(model, "tokenizer.json"), join(dir, "m.gguf"), { type: "q8_0" }); } finally { src.close(); }
    },
    check: (dir) => { assert.ok(readGguf(join(dir, "m.gguf")).tensors.length > 0); },
  },
  {
    name: "safetensors (any weights file)",
    write: (dir) => writeSafetensors(join(dir, "w.safetensors"), [{ name: "x", tensor: { dtype: "f32", shape: [64, 64], data: new Float32Array(4096).fill(0.5) } }]),
    check: (dir) => { const s = openSafetensors(join(dir, "w.safetensors")); try { assert.equal(s.read("x").shape[0], 64); } finally { s.close(); } },
  },
  {
    name: "finetune checkpoint",
    write: (dir) => saveTrainCheckpoint(dir, randomModel(trainCfg, 3, "f32"), opt(), state(7)),
    check: (dir) => { assert.equal(loadTrainCheckpoint(dir, randomModel(trainCfg, 3, "f32"), opt())?.step, 7); },
  },
  {
    name: "finetune final model",
    write: (dir) => writeModelDir(randomModel(trainCfg, 4, "f32"), model, join(dir, "final"), "f32", "v2"),
    check: (dir) => { const s = openSafetensors(join(dir, "final", "model.safetensors")); s.close(); assert.equal(readJsonFile(join(dir, "final", "config.json")).chat_format, "v2"); },
  },
  {
    name: "eval results",
    write: (dir) => writeFileAtomic(join(dir, "results.json"), JSON.stringify({ accuracy: 0.5, items: Array.from({ length: 200 }, (_, i) => i) }) + "\n"),
    check: (dir) => { assert.equal(JSON.parse(readFileSync(join(dir, "results.json"), "utf8")).items.length, 200); },
  },
];

/** Fails with a clear write error (no stack-trace material: one XverseError naming the cause). */
function expectWriteError(fn: () => void, code: string, what: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof XverseError, `${what}: ${(e as Error)?.stack}`);
    assert.equal(e.code, "write_failed", `${what}: ${e.message}`);
    assert.ok(e.message.includes(code), `${what}: ${e.message}`);
    return true;
  });
}

for (const p of PATHS) {
  test(`write fault matrix: ${p.name} — ENOSPC part-way / EROFS keep the previous output, rerun works`, () => {
    // the size of a whole output, to fail at its start, early, and half-way
    const scratch = mkdtempSync(join(work, "size-"));
    p.write(scratch);
    let total = 0;
    for (const v of snapshot(scratch).values()) total += v.length;
    rmSync(scratch, { recursive: true, force: true });
    const dir = mkdtempSync(join(work, "out-"));
    // the previous output, for the paths that replace one; the others must leave the directory as it was
    const replaces = p.name.startsWith("finetune checkpoint") || p.name.startsWith("eval") || p.name.startsWith("convert") || p.name.startsWith("safetensors");
    if (replaces) { p.write(dir); p.check(dir); }
    const before = snapshot(dir);
    const faults: Fault[] = [
      { kind: "ENOSPC", dir, bytes: 0 }, { kind: "ENOSPC", dir, bytes: 100 }, { kind: "ENOSPC", dir, bytes: Math.floor(total / 2) }, { kind: "EROFS", dir },
    ];
    for (const f of faults) {
      const what = `${p.name} under ${f.kind}${f.bytes !== undefined ? ` after ${f.bytes} bytes` : ""}`;
      const undo = injectFault(f);
      try {
        expectWriteError(() => p.write(dir), f.kind, what);
      } finally {
        undo();
      }
      assert.deepEqual([...snapshot(dir).keys()], [...before.keys()], `${what}: no partial or temp file left`);
      for (const [k, v] of before) assert.ok(snapshot(dir).get(k)!.equals(v), `${what}: ${k} unchanged`);
      if (replaces) p.check(dir);
    }
    // the fault gone, the same call completes
    p.write(dir);
    p.check(dir);
  });
}

test("eval cache: ENOSPC mid-append keeps earlier results, and the next run's lines are not glued to the torn one", () => {
  const dir = mkdtempSync(join(work, "cache-"));
  const path = join(dir, "cache.jsonl");
  const c1 = new ResultCache<number>(path);
  c1.put("a", 1);
  c1.put("b", 2);
  const undo = injectFault({ kind: "ENOSPC", dir, bytes: 5 });
  try {
    expectWriteError(() => c1.put("c", 3), "ENOSPC", "cache append");
  } finally {
    undo();
  }
  assert.ok(!readFileSync(path, "utf8").endsWith("\n"), "the torn line is there (the fault wrote part of it)");
  const c2 = new ResultCache<number>(path);
  assert.equal(c2.size, 2);
  c2.put("d", 4);
  c2.put("e", 5);
  const c3 = new ResultCache<number>(path);
  assert.deepEqual(["a", "b", "d", "e"].map((k) => c3.get(k)), [1, 2, 4, 5]);
  assert.equal(c3.get("c"), undefined);
  // a read-only cache directory: one clear error
  const undo2 = injectFault({ kind: "EROFS", dir });
  try {
    expectWriteError(() => c3.put("f", 6), "EROFS", "cache on a read-only disk");
  } finally {
    undo2();
  }
  assert.ok(existsSync(path));
});
