/**
 * stories260K exported as Q8_0 / Q4_0 GGUF and run with its block tensors as stored (q8_0 / q4_0 weights,
 * token_embd looked up per row): the TS backend gives the logits of the dequantized f32 path (same decoders, f32
 * activations); the native backend (int8 activations) stays close. (Greedy text vs llama.cpp on the same files:
 * llama-cpp.test.ts.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Backend } from "../../src/backend/backend.js";
import { loadNativeBackend } from "../../src/backend/native/index.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { loadConfig, parseConfig } from "../../src/config.js";
import { exportGguf, type ExportType } from "../../src/gguf/export.js";
import { ggufProjection } from "../../src/gguf/weights.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { openGgufModel } from "../../src/io/gguf-model.js";
import { XverseModel } from "../../src/model/xverse.js";
import { fixture } from "../helpers/peers.js";

const dir = mkdtempSync(join(tmpdir(), "xverse-gguf-blocks-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

const stories = fixture("golden", "stories260K");
const native = loadNativeBackend({ threads: 2 });
const paths = new Map<ExportType, string>();
function exported(type: ExportType): string {
  let p = paths.get(type);
  if (!p) {
    p = join(dir, `stories-${type}.gguf`);
    exportGguf(openCheckpoint(stories), loadConfig(stories), join(stories, "tokenizer.json"), p, { type });
    paths.set(type, p);
  }
  return p;
}

/** The model on `backend`, block tensors as stored (stored = true) or dequantized to f32 by the GGUF source. */
function open(path: string, backend: Backend, stored: boolean): { model: XverseModel; formats: Map<string, number> } {
  const g = openGgufModel(path);
  const hook = ggufProjection(g);
  const formats = new Map<string, number>();
  const count = (n: string, s: Parameters<typeof hook>[1], r: number, c: number) => {
    const w = hook(n, s, r, c);
    if (w) formats.set(w.format, (formats.get(w.format) ?? 0) + 1);
    return w;
  };
  const model = XverseModel.fromSource(parseConfig(g.config, path), g.source, {
    kvType: "f32", backend, projection: stored ? count : undefined, stored: stored ? count : undefined,
  });
  return { model, formats };
}

const ids = [1, 403, 407, 261, 378, 500, 42];

for (const type of ["q8_0", "q4_0"] as const) {
  test(`stories260K ${type} GGUF: block weights as stored give the dequantized path's logits`, () => {
    const path = exported(type);
    const ref = open(path, tsBackend, false).model.forward(ids, open(path, tsBackend, false).model.newCache(8), { logits: "all" });
    const ts = open(path, tsBackend, true);
    // q, k, v, o, gate, up of 5 layers + token_embd + output (down_proj has 172 columns: F16)
    assert.deepEqual([...ts.formats], [[type, 5 * 6 + 2]]);
    const a = ts.model.forward(ids, ts.model.newCache(8), { logits: "all" });
    let worst = 0, scale = 0;
    for (let i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - ref[i]));
      scale = Math.max(scale, Math.abs(ref[i]));
    }
    assert.ok(worst <= 1e-4 * scale, `TS: max |Δ| ${worst} (max |logit| ${scale})`);
    if (!native) return;
    const nat = open(path, native, true);
    const b = nat.model.forward(ids, nat.model.newCache(8), { logits: "all" });
    const V = b.length / ids.length;
    let nworst = 0, sameTop = 0;
    for (let t = 0; t < ids.length; t++) {
      let ia = 0, ib = 0;
      for (let j = 0; j < V; j++) {
        nworst = Math.max(nworst, Math.abs(b[t * V + j] - ref[t * V + j]));
        if (ref[t * V + j] > ref[t * V + ia]) ia = j;
        if (b[t * V + j] > b[t * V + ib]) ib = j;
      }
      if (ia === ib) sameTop++;
    }
    console.log(`# ${type} native (int8 activations) vs f32: max |Δ logit| ${nworst.toFixed(4)} of ${scale.toFixed(2)}, same argmax ${sameTop}/${ids.length}`);
    assert.ok(nworst <= 3e-2 * scale, `native: max |Δ| ${nworst} (max |logit| ${scale})`);
    assert.ok(sameTop >= ids.length - 1, `native: argmax agrees at ${sameTop} of ${ids.length} positions`);
  });
}

