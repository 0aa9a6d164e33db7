import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { loadConfig } from "../../src/config.js";
import { quantizeCheckpoint } from "../../src/quant/convert.js";
import { readQuantizedWeight } from "../../src/quant/disk.js";
import { quantizeWeight } from "../../src/quant/quantize.js";
import { projectionLoader } from "../../src/quant/load.js";
import { XverseError } from "../../src/errors.js";
import { fixture } from "../helpers/peers.js";

const tiny = fixture("golden", "tiny-xverse");

function bytes(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

for (const [bits, groupSize] of [[8, 0], [4, 0], [4, 16]] as const) {
  test(`quantized directory round-trips: int${bits}${groupSize ? ` group ${groupSize}` : ""}`, () => {
    const work = mkdtempSync(join(tmpdir(), "xv-quant-"));
    try {
      const out = join(work, "q");
      const src = openCheckpoint(tiny);
      const r = quantizeCheckpoint({ source: src, modelDir: tiny, outDir: out, bits, groupSize });
      assert.equal(r.quantized, 3 * 7);
      // the temp directory is gone, the result is complete
      assert.deepEqual(readdirSync(work), ["q"]);
      const cfg = loadConfig(out);
      assert.equal(cfg.quantizationBit, bits);
      assert.equal(cfg.quantizationGroupSize, groupSize);
      for (const f of ["tokenizer.json", "generation_config.json", "tokenizer_config.json"]) assert.ok(existsSync(join(out, f)), f);

      const q = openCheckpoint(out);
      const hook = projectionLoader(cfg)!;
      for (const name of src.names()) {
        if (/_proj\.weight$/.test(name)) {
          const mem = quantizeWeight(src.read(name), bits, groupSize);
          const disk = readQuantizedWeight(q, name, { bits, groupSize });
          assert.equal(disk.format, mem.format, name);
          assert.deepEqual([disk.rows, disk.cols, disk.groupSize], [mem.rows, mem.cols, mem.groupSize], name);
          assert.deepEqual(bytes(disk.data), bytes(mem.data), name);
          assert.deepEqual(disk.scales, mem.scales, name);
          // the loader hook gives the same weight, checked against config shapes
          const viaHook = hook(name, q, mem.rows, mem.cols)!;
          assert.deepEqual(bytes(viaHook.data), bytes(mem.data));
          assert.throws(() => hook(name, q, mem.rows + 1, mem.cols), XverseError);
        } else {
          // embeddings, norms, lm_head are copied bit for bit
          assert.deepEqual(bytes(q.read(name).data), bytes(src.read(name).data), name);
        }
      }
      q.close();
      src.close();
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
}

test("quantize refuses bad requests before writing anything, and leaves no temp directory", () => {
  const work = mkdtempSync(join(tmpdir(), "xv-quant-"));
  try {
    const src = openCheckpoint(tiny);
    // 48 input columns: group 32 does not divide them
    assert.throws(() => quantizeCheckpoint({ source: src, modelDir: tiny, outDir: join(work, "a"), bits: 4, groupSize: 32 }), /group size 32/);
    assert.throws(() => quantizeCheckpoint({ source: src, modelDir: tiny, outDir: join(work, "b"), bits: 8, groupSize: 32 }), /int4 only/);
    mkdirSync(join(work, "full"));
    writeFileSync(join(work, "full", "x"), "");
    assert.throws(() => quantizeCheckpoint({ source: src, modelDir: tiny, outDir: join(work, "full"), bits: 8 }), /not empty/);
    // a source that fails half-way: nothing under the requested name, no temp left behind
    let reads = 0;
    const failing = { ...src, names: () => src.names(), has: (n: string) => src.has(n), info: (n: string) => src.info(n),
      read: (n: string) => { if (++reads > 10) throw new Error("disk on fire"); return src.read(n); }, close: () => {} };
    assert.throws(() => quantizeCheckpoint({ source: failing, modelDir: tiny, outDir: join(work, "c"), bits: 8 }), /disk on fire/);
    assert.deepEqual(readdirSync(work).sort(), ["full"]);
    // an already-quantized directory is not quantized again
    const q8 = join(work, "q8");
    quantizeCheckpoint({ source: src, modelDir: tiny, outDir: q8, bits: 8 });
    const qs = openCheckpoint(q8);
    assert.throws(() => quantizeCheckpoint({ source: qs, modelDir: q8, outDir: join(work, "d"), bits: 4 }), /already quantized/);
    assert.throws(() => projectionLoader(loadConfig(q8), { quantize: 4 }), /already quantized/);
    qs.close();
    src.close();
    // config.json of the output keeps the original fields
    const raw = JSON.parse(readFileSync(join(q8, "config.json"), "utf8"));
    assert.equal(raw.hidden_size, 48);
    assert.equal(raw.quantization_bit, 8);
    assert.equal(raw.quantization_group_size, undefined);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test("a bf16 sharded checkpoint quantizes tensor by tensor", () => {
  const work = mkdtempSync(join(tmpdir(), "xv-quant-"));
  try {
    const dir = fixture("golden", "tiny-xverse-bf16-sharded");
    const model = join(work, "m");
    mkdirSync(model);
    for (const f of readdirSync(dir)) copyFileSync(join(dir, f), join(model, f));
    copyFileSync(join(tiny, "tokenizer.json"), join(model, "tokenizer.json"));
    const src = openCheckpoint(model);
    const r = quantizeCheckpoint({ source: src, modelDir: model, outDir: join(work, "q4"), bits: 4, groupSize: 16 });
    src.close();
    assert.equal(r.quantized, 21);
    assert.deepEqual(readdirSync(join(work, "q4")).sort(), ["config.json", "model.safetensors", "tokenizer.json"]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
