/**
 * The XVERSE forward pass for training: the same math as model/xverse.ts (embed, (RMSNorm → attention → residual →
 * RMSNorm → SwiGLU → residual) × L, RMSNorm, untied lm_head), written with the autograd ops so a backward pass
 * follows. Parameters are f32 master weights by Hugging Face name; LoRA adapters hang off linear layers by module
 * name ("model.layers.0.self_attn.q_proj").
 */
import type { XverseConfig } from "../config.js";
import { XverseError } from "../errors.js";
import type { TensorSource } from "../io/source.js";
import { toFloat32, type Tensor } from "../tensor.js";
import {
  add, attention, checkpoint, crossEntropy, dropout, embedding, linear, rmsnorm, rope, ropeTables, scale, swiglu,
  Tape, Var, type Arr,
} from "./autograd-ops.js";
import { headCrossEntropy } from "./head-loss.js";
import { Rng } from "./rng.js";

export interface TrainBatch {
  B: number;
  T: number;
  /** (B·T) token ids, rows right-padded. */
  inputIds: Int32Array;
  /** (B·T) 1 = real token, 0 = padding (padded keys are masked out of attention). Omitted = no padding. */
  attentionMask?: Uint8Array;
  /** (B·T) RoPE positions; default 0…T−1 in every row (what HF uses for right padding without position_ids). */
  positions?: Int32Array;
  /** (B·T) Hugging Face labels: labels[t] is the token at t, −100 = not trained on; shifted by one inside. */
  labels?: Int32Array;
}

export interface LoraLayer {
  r: number;
  alpha: number;
  /** alpha / r */
  scaling: number;
  dropout: number;
  /** (r, in) */
  A: Var;
  /** (out, r) */
  B: Var;
}

export interface ForwardOptions {
  /** Rerun each decoder layer in backward instead of keeping its activations. */
  recompute?: boolean;
  /** Training mode: LoRA dropout active. */
  train?: boolean;
}

export type ParamDType = "f32" | "f64";

/** Hugging Face tensor names and shapes of every parameter, in checkpoint order. */
export function paramShapes(cfg: XverseConfig): [string, number[]][] {
  const D = cfg.hiddenSize, I = cfg.intermediateSize, qd = cfg.numHeads * cfg.headDim, kd = cfg.numKvHeads * cfg.headDim;
  const out: [string, number[]][] = [["model.embed_tokens.weight", [cfg.vocabSize, D]]];
  for (let l = 0; l < cfg.numLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      [p + "input_layernorm.weight", [D]],
      [p + "self_attn.q_proj.weight", [qd, D]],
      [p + "self_attn.k_proj.weight", [kd, D]],
      [p + "self_attn.v_proj.weight", [kd, D]],
      [p + "self_attn.o_proj.weight", [D, qd]],
      [p + "post_attention_layernorm.weight", [D]],
      [p + "mlp.gate_proj.weight", [I, D]],
      [p + "mlp.up_proj.weight", [I, D]],
      [p + "mlp.down_proj.weight", [D, I]],
    );
  }
  out.push(["model.norm.weight", [D]], ["lm_head.weight", [cfg.vocabSize, D]]);
  return out;
}

/** Input and output width of a linear layer given its module name (…q_proj, …mlp.down_proj, lm_head). */
export function linearDims(cfg: XverseConfig, module: string): [number, number] {
  const shape = paramShapes(cfg).find(([n]) => n === module + ".weight")?.[1];
  if (!shape || shape.length !== 2) throw new XverseError("bad_argument", `${module} is not a linear layer of this model`);
  return [shape[1], shape[0]];
}

export class XverseTrainModel {
  readonly cfg: XverseConfig;
  readonly params = new Map<string, Var>();
  readonly shapes = new Map<string, number[]>();
  readonly lora = new Map<string, LoraLayer>();
  /** Drives LoRA dropout; saved in checkpoints. */
  rng = new Rng(0);

  constructor(cfg: XverseConfig, tensors: Map<string, Arr>) {
    this.cfg = cfg;
    for (const [name, shape] of paramShapes(cfg)) {
      const data = tensors.get(name);
      if (!data) throw new XverseError("bad_checkpoint", `missing tensor ${name} (expected shape [${shape}])`);
      if (data.length !== shape.reduce((a, b) => a * b, 1)) {
        throw new XverseError("bad_checkpoint", `tensor ${name} has ${data.length} values, expected shape [${shape}]`);
      }
      this.params.set(name, new Var(data, true));
      this.shapes.set(name, shape);
    }
  }

  /** Loads every parameter as an f32 master copy (or f64 for gradient checks). Shapes are checked. */
  static fromSource(cfg: XverseConfig, src: TensorSource, dtype: ParamDType = "f32"): XverseTrainModel {
    const m = new Map<string, Arr>();
    for (const [name, shape] of paramShapes(cfg)) {
      if (!src.has(name)) throw new XverseError("bad_checkpoint", `checkpoint has no tensor ${name} (expected shape [${shape}])`);
      const info = src.info(name);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new XverseError("bad_checkpoint", `${info.file}: tensor ${name} has shape [${info.shape}], config.json implies [${shape}]`);
      }
      const f = toFloat32(src.read(name));
      // copy: the master weights must not alias a reader's buffer
      m.set(name, dtype === "f64" ? Float64Array.from(f) : Float32Array.from(f));
    }
    return new XverseTrainModel(cfg, m);
  }

  p(name: string): Var {
    const v = this.params.get(name);
    if (!v) throw new Error(`no parameter ${name}`);
    return v;
  }

  /** Marks which parameters get gradients (full fine-tuning: all; LoRA: none of the base weights). */
  setBaseTrainable(on: boolean): void {
    for (const v of this.params.values()) { v.requiresGrad = on; if (!on) v.grad = null; }
  }

  /** Trainable tensors by name (base weights by HF name; adapters as "<module>.lora_A" / ".lora_B"). */
  trainable(): [string, Var][] {
    const out: [string, Var][] = [];
    for (const [n, v] of this.params) if (v.requiresGrad) out.push([n, v]);
    for (const [m, l] of this.lora) out.push([m + ".lora_A", l.A], [m + ".lora_B", l.B]);
    return out;
  }

  zeroGrad(): void {
    for (const [, v] of this.trainable()) if (v.grad) v.grad.fill(0);
  }

  /** The parameters as tensors for writing (f32). */
  tensors(): { name: string; tensor: Tensor }[] {
    return paramShapes(this.cfg).map(([name, shape]) => {
      const d = this.p(name).data;
      return { name, tensor: { dtype: "f32", shape, data: d instanceof Float32Array ? d : Float32Array.from(d) } };
    });
  }

  private proj(t: Tape, x: Var, module: string, In: number, Out: number, train: boolean): Var {
    const y = linear(t, x, this.p(module + ".weight"), In, Out);
    const ad = this.lora.get(module);
    if (!ad) return y;
    // PEFT's LoRA: y = x Wᵀ + scaling · (dropout(x) Aᵀ) Bᵀ
    const xd = train ? dropout(t, x, ad.dropout, this.rng) : x;
    const xa = linear(t, xd, ad.A, In, ad.r);
    return add(t, y, scale(t, linear(t, xa, ad.B, ad.r, Out), ad.scaling));
  }

  private ropeBase(T: number): { base: number; posScale: number } {
    const c = this.cfg, sc = c.ropeScaling;
    if (!sc) return { base: c.ropeTheta, posScale: 1 };
    if (sc.type === "linear") return { base: c.ropeTheta, posScale: 1 / sc.factor };
    // dynamic NTK (HF LlamaDynamicNTKScalingRotaryEmbedding): grow the base once the sequence passes max_position
    if (T <= c.maxPositionEmbeddings) return { base: c.ropeTheta, posScale: 1 };
    const hd = c.headDim;
    const base = c.ropeTheta * ((sc.factor * T) / c.maxPositionEmbeddings - (sc.factor - 1)) ** (hd / (hd - 2));
    return { base, posScale: 1 };
  }

  /** Logits (B·T, vocab) for a batch. */
  forward(t: Tape, batch: TrainBatch, opts: ForwardOptions = {}): Var {
    const x = this.hidden(t, batch, opts);
    return this.proj(t, x, "lm_head", this.cfg.hiddenSize, this.cfg.vocabSize, opts.train ?? false);
  }

  /** Final hidden states (B·T, hidden), after model.norm: everything but lm_head. */
  hidden(t: Tape, batch: TrainBatch, opts: ForwardOptions = {}): Var {
    const c = this.cfg, { B, T } = batch, D = c.hiddenSize, I = c.intermediateSize, hd = c.headDim;
    const H = c.numHeads, KH = c.numKvHeads, train = opts.train ?? false;
    if (batch.inputIds.length !== B * T) throw new XverseError("bad_argument", `inputIds has ${batch.inputIds.length} ids, expected B·T = ${B * T}`);
    let positions = batch.positions;
    if (!positions) {
      positions = new Int32Array(B * T);
      for (let i = 0; i < B * T; i++) positions[i] = i % T;
    }
    let maxPos = 0;
    for (const p of positions) if (p > maxPos) maxPos = p;
    const { base, posScale } = this.ropeBase(maxPos + 1);
    const tab = ropeTables(positions, hd, base, posScale);
    const keyMask = batch.attentionMask ?? null;

    let x = embedding(t, this.p("model.embed_tokens.weight"), batch.inputIds, D);
    for (let l = 0; l < c.numLayers; l++) {
      const pre = `model.layers.${l}.`;
      const layer = (t: Tape, x: Var): Var => {
        let n = rmsnorm(t, x, this.p(pre + "input_layernorm.weight"), D, c.rmsNormEps);
        let q = this.proj(t, n, pre + "self_attn.q_proj", D, H * hd, train); // (B·T, H·hd)
        let k = this.proj(t, n, pre + "self_attn.k_proj", D, KH * hd, train); // (B·T, KH·hd)
        const v = this.proj(t, n, pre + "self_attn.v_proj", D, KH * hd, train);
        q = rope(t, q, H, hd, tab);
        k = rope(t, k, KH, hd, tab);
        const a = attention(t, q, k, v, { B, T, nHeads: H, nKvHeads: KH, headDim: hd, keyMask });
        const h = add(t, x, this.proj(t, a, pre + "self_attn.o_proj", H * hd, D, train));
        n = rmsnorm(t, h, this.p(pre + "post_attention_layernorm.weight"), D, c.rmsNormEps);
        const g = this.proj(t, n, pre + "mlp.gate_proj", D, I, train); // (B·T, I)
        const u = this.proj(t, n, pre + "mlp.up_proj", D, I, train);
        return add(t, h, this.proj(t, swiglu(t, g, u), pre + "mlp.down_proj", I, D, train));
      };
      x = opts.recompute ? checkpoint(t, x, layer, this.rng) : layer(t, x);
    }
    return rmsnorm(t, x, this.p("model.norm.weight"), D, c.rmsNormEps);
  }

  /** Mean next-token cross-entropy over labelled positions; `count` is how many positions were counted. */
  loss(t: Tape, batch: TrainBatch, opts: ForwardOptions = {}): { loss: Var; count: number } {
    if (!batch.labels) throw new XverseError("bad_argument", "loss needs labels");
    const targets = shiftLabels(batch.labels, batch.B, batch.T);
    const x = this.hidden(t, batch, opts);
    // a LoRA on lm_head needs the general path; otherwise the fused head skips masked rows and big buffers
    if (this.lora.has("lm_head")) {
      return crossEntropy(t, this.proj(t, x, "lm_head", this.cfg.hiddenSize, this.cfg.vocabSize, opts.train ?? false), targets, this.cfg.vocabSize);
    }
    return headCrossEntropy(t, x, this.p("lm_head.weight"), targets, this.cfg.hiddenSize, this.cfg.vocabSize);
  }
}

/** Logits at t predict labels at t+1: targets[t] = labels[t+1], and the last position of each row is ignored. */
export function shiftLabels(labels: Int32Array, B: number, T: number): Int32Array {
  const out = new Int32Array(B * T).fill(-100);
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) out[b * T + t] = labels[b * T + t + 1];
  return out;
}
