/**
 * `xverse convert` from GPTQ / AWQ to GGUF (gguf/from-gptq.ts). The oracle for every written tensor is the
 * independent packer's dequantized matrix (gptq-pack.ts) and ggml's block decoding (gguf/quants.ts dequantize):
 * - exact copies (Q4_0 from symmetric int4, Q4_1 from int4 with f16-exact −scale·zero, Q8_0 from int8 / int4)
 *   decode to exactly W = scale · (q − zero), q / k rows un-permuted from llama.cpp's RoPE order;
 * - projections no block holds exactly (desc_act, K-quant types) are requantized, and `notes` says so;
 * - the GPTQ and AWQ fixtures written as F32 run to its golden logits (≤ 1e-4) and greedy tokens from the GGUF file.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { main } from "../../src/cli/main.js";
import { loadConfig } from "../../src/config.js";
import { exportGptqGguf } from "../../src/gguf/from-gptq.js";
import { argmax } from "../../src/generate/processors.js";
import { permuteRopeRows, ropeRole, ggufToHf } from "../../src/gguf/names.js";
import { dequantize } from "../../src/gguf/quants.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { readGguf, readGgufTensorBytes } from "../../src/io/gguf.js";
import { detectGptq } from "../../src/io/gptq.js";
import { openSafetensors } from "../../src/io/safetensors.js";
import { loadModel } from "../../src/model/load.js";
import { toFloat32 } from "../../src/tensor.js";
import { maxAbsDiff } from "../helpers/compare.js";
import { fixture } from "../helpers/peers.js";
import { rng } from "../helpers/rng.js";
import { randomF32Model, writeGptqModel, type PackOptions } from "./gptq-pack.js";

const tmp: string[] = [];
after(() => { for (const d of tmp) rmSync(d, { recursive: true, force: true }); });
const outDir = mkdtempSync(join(tmpdir(), "xv-gptq-gguf-"));
tmp.push(outDir);

const tinyDir = fixture("golden", "tiny-xverse");
// hidden 64 and intermediate 128: every row length a multiple of 32, so group 32 fits every projection
const SHAPE = { hidden: 64, heads: 4, intermediate: 128, layers: 2, vocab: 4099 };

interface Variant { label: string; pack: Omit<PackOptions, "r">; type: "q4_0" | "q8_0" | "q4_k_m"; expect: Record<string, number>; reason?: RegExp }

const variants: Variant[] = [
  { label: "int4 sym → Q4_0 exactly", pack: { bits: 4, group: 32, sym: true, descAct: false }, type: "q4_0", expect: { Q4_0: 14 } },
  { label: "int4 asym, f16-exact zero terms → Q4_1 exactly", pack: { bits: 4, group: 32, sym: false, descAct: false, pow2Scales: true }, type: "q4_0", expect: { Q4_1: 14 } },
  { label: "int4 asym → Q8_0 exactly", pack: { bits: 4, group: 32, sym: false, descAct: false }, type: "q8_0", expect: { Q8_0: 14 } },
  { label: "int8 sym → Q8_0 exactly", pack: { bits: 8, group: 64, sym: true, descAct: false }, type: "q8_0", expect: { Q8_0: 14 } },
  { label: "int4 desc_act → requantized", pack: { bits: 4, group: 32, sym: false, descAct: true }, type: "q4_0", expect: {}, reason: /14 projection\(s\) dequantized and requantized to q4_0 or its fallback type \(desc_act column order\)/ },
  { label: "int4 → q4_k_m requantized", pack: { bits: 4, group: 32, sym: true, descAct: false }, type: "q4_k_m", expect: {}, reason: /14 projection\(s\) dequantized and requantized to q4_k_m or its fallback type \(--type q4_k_m has no exact form of int4 groups\)/ },
];

let seed = 1;
for (const v of variants) {
  test(`convert GPTQ ${v.label}; every exact tensor decodes to W = scale · (q − zero)`, () => {
    const r = rng(seed++);
    const { source, config } = randomF32Model(SHAPE, r);
    const { dir, denseDir } = writeGptqModel(tinyDir, source, { ...v.pack, r },
      { quant_method: "gptq", bits: v.pack.bits, group_size: v.pack.group, desc_act: v.pack.descAct, sym: v.pack.sym }, config);
    tmp.push(dir, denseDir);
    const out = join(outDir, `${seed}.gguf`);
    const src = openCheckpoint(dir);
    const res = exportGptqGguf(src, detectGptq(dir)!, loadConfig(dir), join(dir, "tokenizer.json"), out, { type: v.type });
    src.close();
    for (const [t, n] of Object.entries(v.expect)) assert.ok(res.notes.some((s) => s.startsWith(`${n} gptq int${v.pack.bits}`) && s.endsWith(`copied exactly as ${t}`)), res.notes.join("; "));
    if (v.reason) assert.ok(res.notes.some((s) => v.reason!.test(s)), res.notes.join("; "));

    const dense = openSafetensors(join(denseDir, "model.safetensors"));
    const g = readGguf(out);
    let exact = 0;
    for (const t of g.tensors) {
      const hf = ggufToHf(t.name)!;
      if (!/_proj\.weight$/.test(hf)) continue;
      const [rows, cols] = t.shape;
      let x = dequantize(t.type, readGgufTensorBytes(g, t), rows * cols);
      const role = ropeRole(hf);
      if (role) x = permuteRopeRows(x, SHAPE.heads, cols, false);
      const want = toFloat32(dense.read(hf));
      const name = Object.keys(v.expect)[0];
      if (name) {
        assert.equal(res.tensorTypes[t.name], name, t.name);
        assert.deepEqual(x, want, `${t.name} decodes to the GPTQ weights exactly`);
        exact++;
      } else {
        // requantized: close to the dequantized weights, not equal (q4_0 / q4_k step ≈ amax / 8 of ±0.1 weights)
        assert.ok(maxAbsDiff(x, want) < 0.03, `${t.name}: requantized within 0.03`);
      }
    }
    assert.equal(exact, Object.keys(v.expect).length ? 14 : 0);
    dense.close();
  });
}

for (const fx of ["tiny-xverse-gptq-int4", "tiny-xverse-awq-int4"]) test(`${fx} as an F32 GGUF (\`xverse convert --type f32\`) gives the golden logits and greedy tokens`, async () => {
  const dir = fixture("golden", fx);
  const out = join(outDir, `${fx}-f32.gguf`);
  assert.equal(await main(["convert", "--model", dir, "--to", "gguf", "--type", "f32", "--out", out, "--quiet"]), 0);
  const { model } = await loadModel(out, { backend: "ts", kvType: "f32" });
  const golden = JSON.parse(readFileSync(join(dir, "golden.json"), "utf8")) as { prompts: Record<string, number[]>; greedy: Record<string, number[]> };
  const goldenT = openSafetensors(join(dir, "golden.safetensors"));
  for (const [p, ids] of Object.entries(golden.prompts)) {
    const logits = model.forward(ids, model.newCache(ids.length), { logits: "all" });
    const d = maxAbsDiff(logits, toFloat32(goldenT.read(`logits.${p}`)));
    assert.ok(d <= 1e-4, `${p}: max |Δ| = ${d}`);
  }
  const ids = golden.prompts.chat;
  const cache = model.newCache(ids.length + 32);
  let l = model.forward(ids, cache);
  const got: number[] = [];
  for (let i = 0; i < 32; i++) {
    const b = argmax(l);
    got.push(b);
    if (b === 3) break;
    l = model.forward([b], cache);
  }
  assert.deepEqual(got, golden.greedy.chat);
});
