/**
 * Resumable training checkpoints: DIR/checkpoint/{trainable.safetensors, optimizer.safetensors, trainer_state.json}.
 * The whole directory is written under a temporary name and swapped in with renames, so a crash at any moment
 * leaves either the old checkpoint or the new one — never a mix of steps. A leftover "checkpoint.old" (a crash
 * between the two renames) is used when "checkpoint" is missing.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { XverseError } from "../errors.js";
import { openSafetensors, writeSafetensors } from "../io/safetensors.js";
import { toFloat32 } from "../tensor.js";
import type { AdamW } from "./adamw.js";
import type { Arr } from "./autograd-ops.js";
import type { TrainState } from "./loop.js";
import type { XverseTrainModel } from "./xverse-train-model.js";
import { removeStaleTemps, writeError } from "../io/atomic.js";

const f32 = (a: Arr): Float32Array => (a instanceof Float32Array ? a : Float32Array.from(a));

export function saveTrainCheckpoint(dir: string, model: XverseTrainModel, opt: AdamW, state: TrainState, describe?: Record<string, unknown>): void {
  const final = join(dir, "checkpoint"), old = join(dir, "checkpoint.old");
  const tmp = join(dir, `.checkpoint.${process.pid}.tmp`);
  try {
    mkdirSync(dir, { recursive: true });
    rmSync(tmp, { recursive: true, force: true });
    removeStaleTemps(dir, ".checkpoint.");
    mkdirSync(tmp);
  } catch (e) {
    throw writeError(final, e, "the previous checkpoint, if any, is kept");
  }
  try {
    const params = model.trainable();
    writeSafetensors(join(tmp, "trainable.safetensors"), params.map(([name, v]) => ({ name, tensor: { dtype: "f32" as const, shape: [v.data.length], data: f32(v.data) } })));
    const optTensors = [];
    const steps: Record<string, number> = {};
    for (const [name] of params) {
      const s = opt.state.get(name);
      if (!s) continue;
      steps[name] = s.step;
      optTensors.push({ name: name + ".exp_avg", tensor: { dtype: "f32" as const, shape: [s.m.length], data: f32(s.m) } });
      optTensors.push({ name: name + ".exp_avg_sq", tensor: { dtype: "f32" as const, shape: [s.v.length], data: f32(s.v) } });
    }
    writeSafetensors(join(tmp, "optimizer.safetensors"), optTensors);
    const json = {
      format: "xverse-ts-train-checkpoint/1",
      step: state.step, epoch: state.epoch, batchInEpoch: state.batchInEpoch, tokens: state.tokens,
      rngState: model.rng.state, lr: opt.lr, optimizerSteps: steps, describe: describe ?? null, history: state.history,
    };
    writeFileSync(join(tmp, "trainer_state.json"), JSON.stringify(json, null, 1) + "\n");
    rmSync(old, { recursive: true, force: true });
    if (existsSync(final)) renameSync(final, old);
    renameSync(tmp, final);
    rmSync(old, { recursive: true, force: true });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw writeError(final, e, "the previous checkpoint is kept; --resume continues from it");
  }
}

/** Restores weights, optimizer state and loop position; null when DIR holds no checkpoint yet. */
export function loadTrainCheckpoint(dir: string, model: XverseTrainModel, opt: AdamW, describe?: Record<string, unknown>): TrainState | null {
  let ck = join(dir, "checkpoint");
  if (!existsSync(join(ck, "trainer_state.json"))) {
    ck = join(dir, "checkpoint.old");
    if (!existsSync(join(ck, "trainer_state.json"))) return null;
  }
  const s = JSON.parse(readFileSync(join(ck, "trainer_state.json"), "utf8")) as Record<string, unknown>;
  if (s.format !== "xverse-ts-train-checkpoint/1") throw new XverseError("bad_checkpoint", `${ck}: not an xverse-ts training checkpoint`);
  if (describe && s.describe) {
    // the job must be the same (model, data, LoRA shape, batch layout); lr or epochs may change
    for (const k of ["model", "data", "lora", "batchSize", "gradAccum", "seed", "packing", "maxLength"]) {
      if (JSON.stringify((s.describe as Record<string, unknown>)[k]) !== JSON.stringify(describe[k])) {
        throw new XverseError("bad_checkpoint", `${ck} was written by a different run (${k}: ${JSON.stringify((s.describe as Record<string, unknown>)[k])} then, ${JSON.stringify(describe[k])} now); use another --out or drop --resume`);
      }
    }
  }
  const params = model.trainable();
  const w = openSafetensors(join(ck, "trainable.safetensors"));
  try {
    for (const [name, v] of params) {
      if (!w.has(name)) throw new XverseError("bad_checkpoint", `${ck}: no saved tensor for ${name}`);
      const d = toFloat32(w.read(name));
      if (d.length !== v.data.length) throw new XverseError("bad_checkpoint", `${ck}: ${name} has ${d.length} values, the model has ${v.data.length}`);
      v.data.set(d);
    }
  } finally { w.close(); }
  const o = openSafetensors(join(ck, "optimizer.safetensors"));
  const steps = s.optimizerSteps as Record<string, number>;
  try {
    opt.state.clear();
    for (const [name, v] of params) {
      if (!(name in steps)) continue;
      const mk = (t: Float32Array): Arr => (v.data instanceof Float32Array ? Float32Array.from(t) : Float64Array.from(t));
      opt.state.set(name, { step: steps[name], m: mk(toFloat32(o.read(name + ".exp_avg"))), v: mk(toFloat32(o.read(name + ".exp_avg_sq"))) });
    }
  } finally { o.close(); }
  model.rng.state = s.rngState as number;
  return {
    step: s.step as number, epoch: s.epoch as number, batchInEpoch: s.batchInEpoch as number, tokens: s.tokens as number,
    history: s.history as TrainState["history"],
  };
}
