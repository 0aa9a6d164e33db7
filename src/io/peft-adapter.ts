/**
 * A PEFT LoRA adapter applied to a checkpoint at load time: a TensorSource that reads the base tensors and
 * returns W + (alpha/r)·B·A for every adapted linear, so any loader (inference, quantize, convert) runs the
 * fine-tuned model without a merged copy on disk. Tensors keep their dtype (bf16 weights are merged in f32
 * and rounded back once).
 */
import { join } from "node:path";
import { XverseError } from "../errors.js";
import { openSafetensors } from "./safetensors.js";
import type { TensorSource } from "./source.js";
import { f32ToBf16, f32ToF16, toFloat32, type Tensor } from "../tensor.js";
import { readJsonFile } from "../config.js";

interface Adapter { A: Float32Array; B: Float32Array; r: number; In: number; Out: number }

/** Reads adapter_config.json + adapter_model.safetensors into per-weight deltas (keyed "<module>.weight"). */
function readAdapter(dir: string): { scaling: number; adapters: Map<string, Adapter> } {
  const cfgPath = join(dir, "adapter_config.json");
  const cfg = readJsonFile(cfgPath);
  if (cfg.use_dora === true || cfg.use_rslora === true || cfg.fan_in_fan_out === true) {
    throw new XverseError("unsupported", `${cfgPath}: DoRA, rsLoRA and fan_in_fan_out adapters are not supported`);
  }
  const r = Number(cfg.r), alpha = Number(cfg.lora_alpha ?? r);
  if (!(r >= 1)) throw new XverseError("bad_adapter", `${cfgPath}: "r" must be a positive integer`);
  const src = openSafetensors(join(dir, "adapter_model.safetensors"));
  const parts = new Map<string, { A?: Tensor; B?: Tensor }>();
  try {
    for (const n of src.names()) {
      const m = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/.exec(n);
      if (!m) continue;
      const e = parts.get(m[1]) ?? {};
      e[m[2] as "A" | "B"] = src.read(n);
      parts.set(m[1], e);
    }
  } finally {
    src.close();
  }
  const adapters = new Map<string, Adapter>();
  for (const [mod, { A, B }] of parts) {
    if (!A || !B || A.shape[0] !== r || B.shape[1] !== r) throw new XverseError("bad_adapter", `${dir}: ${mod} needs lora_A [${r}, in] and lora_B [out, ${r}]`);
    adapters.set(mod + ".weight", { A: toFloat32(A), B: toFloat32(B), r, In: A.shape[1], Out: B.shape[0] });
  }
  if (adapters.size === 0) throw new XverseError("bad_adapter", `${dir}/adapter_model.safetensors holds no LoRA tensors`);
  return { scaling: alpha / r, adapters };
}

export function withPeftAdapter(base: TensorSource, adapterDir: string): TensorSource {
  const { scaling, adapters } = readAdapter(adapterDir);
  for (const [name, a] of adapters) {
    if (!base.has(name)) throw new XverseError("bad_adapter", `${adapterDir} adapts ${name}, which the model does not have`);
    const s = base.info(name).shape;
    if (s.length !== 2 || s[0] !== a.Out || s[1] !== a.In) throw new XverseError("bad_adapter", `${adapterDir}: ${name} is [${s}] but the adapter is for [${a.Out}, ${a.In}]`);
  }
  return {
    names: () => base.names(),
    has: (n) => base.has(n),
    info: (n) => base.info(n),
    metadata: base.metadata ? () => base.metadata!() : undefined,
    close: () => base.close(),
    read(name: string): Tensor {
      const t = base.read(name);
      const a = adapters.get(name);
      if (!a) return t;
      const w = Float32Array.from(toFloat32(t));
      // W (Out, In) += scaling · B (Out, r) · A (r, In)
      for (let o = 0; o < a.Out; o++) {
        for (let i = 0; i < a.In; i++) {
          let s = 0;
          for (let k = 0; k < a.r; k++) s += a.B[o * a.r + k] * a.A[k * a.In + i];
          w[o * a.In + i] += scaling * s;
        }
      }
      if (t.dtype === "bf16") return { dtype: "bf16", shape: t.shape, data: Uint16Array.from(w, f32ToBf16) };
      if (t.dtype === "f16") return { dtype: "f16", shape: t.shape, data: Uint16Array.from(w, f32ToF16) };
      return { dtype: "f32", shape: t.shape, data: w };
    },
  };
}
