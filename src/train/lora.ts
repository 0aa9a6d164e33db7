/**
 * LoRA as PEFT does it: for each targeted linear W (out, in), y = x Wᵀ + (alpha/r) · (dropout(x) Aᵀ) Bᵀ with
 * A (r, in) ~ kaiming-uniform(a=√5) = U(±1/√in) and B (out, r) = 0, so training starts from the base model.
 * Adapters are saved and loaded in PEFT's layout (adapter_config.json + adapter_model.safetensors with
 * `base_model.model.<module>.lora_A.weight` names), and can be merged into the base weights.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { XverseError } from "../errors.js";
import { openSafetensors, writeSafetensors } from "../io/safetensors.js";
import { AtomicFile } from "../io/atomic.js";
import { toFloat32 } from "../tensor.js";
import { Var, type Arr } from "./autograd-ops.js";
import { Rng } from "./rng.js";
import { linearDims, paramShapes, type XverseTrainModel } from "./xverse-train-model.js";
import { readJsonFile } from "../config.js";

export interface LoraOptions {
  r: number;
  alpha: number;
  dropout: number;
  /** Module name suffixes (PEFT target_modules), e.g. ["q_proj", "v_proj"]; "all" = every linear but lm_head. */
  targets: string[];
  seed?: number;
  dtype?: "f32" | "f64";
  /** Initial A per module (e.g. to reproduce a PyTorch run); others are drawn from `seed`. */
  initA?: Map<string, Float32Array>;
}

export const ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/** Module names ("model.layers.3.self_attn.q_proj") a PEFT target list selects, in model order. */
export function targetModules(model: XverseTrainModel, targets: string[]): string[] {
  const want = targets.flatMap((t) => (t === "all" || t === "all-linear" ? ALL_LINEAR : [t]));
  // every 2-D weight except the embedding table is a linear layer
  const modules = paramShapes(model.cfg).filter(([n, s]) => s.length === 2 && n !== "model.embed_tokens.weight")
    .map(([n]) => n.replace(/\.weight$/, ""));
  const picked = modules.filter((m) => want.some((t) => m === t || m.endsWith("." + t)));
  const unknown = want.filter((t) => !modules.some((m) => m === t || m.endsWith("." + t)));
  if (unknown.length) {
    throw new XverseError("bad_flag", `LoRA target ${unknown.map((u) => `"${u}"`).join(", ")} matches no linear layer; use some of ${ALL_LINEAR.join(", ")}, lm_head or all`);
  }
  return picked;
}

/** Attaches fresh adapters and returns their module names. Base weights are not touched (freeze them yourself). */
export function addLora(model: XverseTrainModel, o: LoraOptions): string[] {
  if (!(o.r >= 1) || !Number.isInteger(o.r)) throw new XverseError("bad_flag", `LoRA rank must be a positive integer, got ${o.r}`);
  if (!(o.dropout >= 0 && o.dropout < 1)) throw new XverseError("bad_flag", `LoRA dropout must be in [0, 1), got ${o.dropout}`);
  const rng = new Rng(o.seed ?? 0);
  const mk = (n: number): Arr => (o.dtype === "f64" ? new Float64Array(n) : new Float32Array(n));
  const mods = targetModules(model, o.targets);
  for (const m of mods) {
    const [In, Out] = linearDims(model.cfg, m);
    const A = mk(o.r * In);
    const init = o.initA?.get(m);
    if (init) {
      if (init.length !== A.length) throw new XverseError("bad_argument", `initial lora_A for ${m} has ${init.length} values, expected [${o.r}, ${In}]`);
      A.set(init);
    } else {
      const bound = 1 / Math.sqrt(In);
      for (let i = 0; i < A.length; i++) A[i] = (2 * rng.next() - 1) * bound;
    }
    model.lora.set(m, { r: o.r, alpha: o.alpha, scaling: o.alpha / o.r, dropout: o.dropout, A: new Var(A, true), B: new Var(mk(Out * o.r), true) });
  }
  return mods;
}

/** W += scaling · B A for every adapter, then drops the adapters (the model is a plain model again). */
export function mergeLora(model: XverseTrainModel): void {
  for (const [m, l] of model.lora) {
    const [In, Out] = linearDims(model.cfg, m);
    const W = model.p(m + ".weight").data, A = l.A.data, B = l.B.data;
    for (let o = 0; o < Out; o++) {
      for (let i = 0; i < In; i++) {
        let s = 0;
        for (let k = 0; k < l.r; k++) s += B[o * l.r + k] * A[k * In + i];
        W[o * In + i] += l.scaling * s;
      }
    }
  }
  model.lora.clear();
}

const peftName = (module: string, ab: "A" | "B"): string => `base_model.model.${module}.lora_${ab}.weight`;

/** Writes adapter_config.json and adapter_model.safetensors (f32) the way PEFT's save_pretrained does. */
export function savePeftAdapter(model: XverseTrainModel, dir: string, baseModel = ""): void {
  if (model.lora.size === 0) throw new XverseError("bad_argument", "the model has no LoRA adapters to save");
  mkdirSync(dir, { recursive: true });
  const first = [...model.lora.values()][0];
  const modules = [...model.lora.keys()];
  const targets = [...new Set(modules.map((m) => m.split(".").pop()!))];
  const tensors = modules.flatMap((m) => {
    const l = model.lora.get(m)!;
    const [In, Out] = linearDims(model.cfg, m);
    const f32 = (a: Arr): Float32Array => (a instanceof Float32Array ? a : Float32Array.from(a));
    return [
      { name: peftName(m, "A"), tensor: { dtype: "f32" as const, shape: [l.r, In], data: f32(l.A.data) } },
      { name: peftName(m, "B"), tensor: { dtype: "f32" as const, shape: [Out, l.r], data: f32(l.B.data) } },
    ];
  });
  writeSafetensors(join(dir, "adapter_model.safetensors"), tensors, { format: "pt" });
  const config = {
    alpha_pattern: {}, auto_mapping: null, base_model_name_or_path: baseModel, bias: "none", fan_in_fan_out: false,
    inference_mode: true, init_lora_weights: true, layers_pattern: null, layers_to_transform: null,
    lora_alpha: first.alpha, lora_dropout: first.dropout, modules_to_save: null, peft_type: "LORA", r: first.r,
    rank_pattern: {}, revision: null, target_modules: targets, task_type: "CAUSAL_LM", use_dora: false, use_rslora: false,
  };
  const f = new AtomicFile(join(dir, "adapter_config.json"));
  try {
    f.write(new TextEncoder().encode(JSON.stringify(config, null, 2) + "\n"));
    f.commit();
  } catch (e) { f.abort(); throw e; }
}

export function isPeftAdapterDir(dir: string): boolean {
  return existsSync(join(dir, "adapter_config.json"));
}

/**
 * Loads a PEFT LoRA adapter directory onto the model (adapter tensors become trainable Vars).
 * Accepts PEFT's names with or without the ".default" adapter name segment.
 */
export function loadPeftAdapter(model: XverseTrainModel, dir: string, dtype: "f32" | "f64" = "f32"): string[] {
  const cfgPath = join(dir, "adapter_config.json");
  const cfg = readJsonFile(cfgPath);
  if (cfg.peft_type !== undefined && cfg.peft_type !== "LORA") throw new XverseError("unsupported", `${cfgPath}: peft_type ${JSON.stringify(cfg.peft_type)} is not supported (only LORA)`);
  if (cfg.use_dora === true || cfg.use_rslora === true || cfg.fan_in_fan_out === true) {
    throw new XverseError("unsupported", `${cfgPath}: DoRA, rsLoRA and fan_in_fan_out adapters are not supported`);
  }
  const r = Number(cfg.r), alpha = Number(cfg.lora_alpha ?? r), dropout = Number(cfg.lora_dropout ?? 0);
  const file = join(dir, "adapter_model.safetensors");
  if (!existsSync(file)) throw new XverseError("bad_adapter", `${dir} has no adapter_model.safetensors (a .bin adapter? convert it with PEFT's save_pretrained(safe_serialization=True))`);
  const src = openSafetensors(file);
  try {
    const byModule = new Map<string, { A?: Float32Array; B?: Float32Array; shapeA?: number[]; shapeB?: number[] }>();
    for (const n of src.names()) {
      const m = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/.exec(n);
      if (!m) continue;
      const e = byModule.get(m[1]) ?? {};
      const t = src.read(n);
      if (m[2] === "A") { e.A = Float32Array.from(toFloat32(t)); e.shapeA = t.shape; } else { e.B = Float32Array.from(toFloat32(t)); e.shapeB = t.shape; }
      byModule.set(m[1], e);
    }
    if (byModule.size === 0) throw new XverseError("bad_adapter", `${file} holds no LoRA tensors (expected names like base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight)`);
    const mk = (a: Float32Array): Arr => (dtype === "f64" ? Float64Array.from(a) : a);
    for (const [m, e] of byModule) {
      const [In, Out] = linearDims(model.cfg, m);
      if (!e.A || !e.B) throw new XverseError("bad_adapter", `${file}: ${m} has only one of lora_A / lora_B`);
      if (e.shapeA![0] !== r || e.shapeA![1] !== In || e.shapeB![0] !== Out || e.shapeB![1] !== r) {
        throw new XverseError("bad_adapter", `${file}: ${m} lora_A [${e.shapeA}] / lora_B [${e.shapeB}] do not fit r=${r}, layer [${Out}, ${In}]`);
      }
      model.lora.set(m, { r, alpha, scaling: alpha / r, dropout, A: new Var(mk(e.A), true), B: new Var(mk(e.B), true) });
    }
    return [...byModule.keys()];
  } finally {
    src.close();
  }
}
