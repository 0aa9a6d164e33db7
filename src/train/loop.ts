/**
 * The training loop: seeded epochs of micro-batches, gradient accumulation, clipping, AdamW with a schedule,
 * periodic evaluation and resumable checkpoints. Synchronous (it is all CPU work); progress goes to a hook.
 *
 * Gradient accumulation weighs every micro-batch by its share of the window's target tokens, so an accumulated
 * step equals one big batch's mean loss (what transformers ≥ 4.46 does with num_items_in_batch).
 */
import { XverseError } from "../errors.js";
import { AdamW, clipGradNorm } from "./adamw.js";
import { Tape } from "./autograd-ops.js";
import { loadTrainCheckpoint, saveTrainCheckpoint } from "./checkpoint.js";
import { collate, countTargets, epochBatches, type Example } from "./data.js";
import { lrMultiplier, type ScheduleName } from "./schedule.js";
import type { TrainBatch, XverseTrainModel } from "./xverse-train-model.js";
import { yieldToEventLoop } from "../event-loop.js";

export interface TrainConfig {
  lr: number;
  epochs: number;
  batchSize: number;
  gradAccum: number;
  /** ≤ 0 disables clipping. */
  maxGradNorm: number;
  schedule: ScheduleName;
  warmupSteps: number;
  weightDecay: number;
  betas?: [number, number];
  eps?: number;
  seed: number;
  shuffle?: boolean;
  /** Activation recomputation per decoder layer. */
  recompute?: boolean;
  /** Evaluate every N optimizer steps (0 = only at the end). */
  evalEvery?: number;
  /** Checkpoint every N optimizer steps (0 = never; needs checkpointDir). */
  saveEvery?: number;
  /** Stop after this many optimizer steps in total (also sets the schedule's length). */
  maxSteps?: number;
  /** Also evaluate before the first step (a baseline for the curve). */
  evalAtStart?: boolean;
}

export interface LogEntry {
  step: number;
  epoch: number;
  /** Token-weighted mean training loss of the step. */
  loss?: number;
  evalLoss?: number;
  lr: number;
  gradNorm?: number;
  /** Target tokens seen so far (the ones the loss counts). */
  tokens: number;
  /** Input tokens (padding excluded) processed per second since the last checkpoint or start. */
  tokensPerSec?: number;
  /** Seconds per optimizer step over the same span (for the ETA). */
  secPerStep?: number;
}

export interface TrainState {
  step: number;
  epoch: number;
  /** Next micro-batch index within the epoch. */
  batchInEpoch: number;
  tokens: number;
  history: LogEntry[];
  /** True when run.signal stopped the run early. */
  stopped?: boolean;
}

export interface TrainHooks {
  onLog?(e: LogEntry, totalSteps: number): void;
  onCheckpoint?(dir: string, step: number): void;
}

export interface TrainRun {
  checkpointDir?: string;
  /** Continue from checkpointDir's checkpoint when there is one. */
  resume?: boolean;
  padId: number;
  hooks?: TrainHooks;
  /** Saved with checkpoints so a resume can check it runs the same job. */
  describe?: Record<string, unknown>;
  /** Checked after every optimizer step: when aborted, the loop saves a checkpoint and returns (stopped = true). */
  signal?: AbortSignal;
}

/** Optimizer steps of the whole run. */
export function totalSteps(nExamples: number, c: TrainConfig): number {
  const micro = Math.ceil(nExamples / c.batchSize);
  const perEpoch = Math.ceil(micro / c.gradAccum);
  const all = perEpoch * c.epochs;
  return c.maxSteps ? Math.min(c.maxSteps, all) : all;
}

/** Mean loss per target token over a data set, without gradients. */
export function evaluate(model: XverseTrainModel, examples: Example[], batchSize: number, padId: number): number {
  let sum = 0, count = 0;
  for (let i = 0; i < examples.length; i += batchSize) {
    const b: TrainBatch = collate(examples.slice(i, i + batchSize), padId);
    const r = model.loss(new Tape(false), b);
    sum += r.loss.data[0] * r.count;
    count += r.count;
  }
  return count ? sum / count : NaN;
}

/**
 * Runs the whole job. Async only so that signals (Ctrl-C → run.signal) are seen between steps: the loop yields to
 * the event loop once per optimizer step.
 */
export async function train(model: XverseTrainModel, data: Example[], evalData: Example[] | null, c: TrainConfig, run: TrainRun): Promise<TrainState> {
  if (data.length === 0) throw new XverseError("bad_data", "no training examples (all were empty or cut away)");
  // HF Trainer's parameter groups: no weight decay on norm weights (or biases, which XVERSE has none of)
  const opt = new AdamW({ lr: c.lr, betas: c.betas, eps: c.eps, weightDecay: c.weightDecay, decays: (n) => !/norm\.weight$|bias$/.test(n) });
  const total = totalSteps(data.length, c);
  let state: TrainState = { step: 0, epoch: 0, batchInEpoch: 0, tokens: 0, history: [] };
  if (run.resume && run.checkpointDir) {
    const s = loadTrainCheckpoint(run.checkpointDir, model, opt, run.describe);
    if (s) state = s;
  }
  const params = model.trainable();
  if (params.length === 0) throw new XverseError("bad_argument", "nothing to train: no parameter requires a gradient");
  const log = (e: LogEntry): void => { state.history.push(e); run.hooks?.onLog?.(e, total); };
  const doEval = (): void => {
    if (!evalData?.length) return;
    const evalLoss = evaluate(model, evalData, c.batchSize, run.padId);
    log({ step: state.step, epoch: state.epoch, evalLoss, lr: opt.lr, tokens: state.tokens });
  };
  const save = (): void => {
    if (!run.checkpointDir) return;
    saveTrainCheckpoint(run.checkpointDir, model, opt, state, run.describe);
    run.hooks?.onCheckpoint?.(run.checkpointDir, state.step);
  };

  if (c.evalAtStart && state.step === 0) doEval();
  let t0 = performance.now(), seen = 0, steps0 = state.step;
  outer: for (; state.epoch < c.epochs; state.epoch++, state.batchInEpoch = 0) {
    const batches = epochBatches(data, c.batchSize, c.seed, state.epoch, run.padId, c.shuffle ?? true);
    while (state.batchInEpoch < batches.length) {
      if (state.step >= total) break outer;
      const window = batches.slice(state.batchInEpoch, state.batchInEpoch + c.gradAccum);
      const counts = window.map(countTargets);
      const n = counts.reduce((a, b) => a + b, 0);
      model.zeroGrad();
      let lossSum = 0;
      for (const mb of window) {
        seen += mb.attentionMask ? mb.attentionMask.reduce((a, b) => a + b, 0) : mb.B * mb.T;
        const t = new Tape();
        const { loss, count } = model.loss(t, mb, { recompute: c.recompute, train: true });
        if (count) t.backward(loss, count / n);
        lossSum += loss.data[0] * count;
      }
      const gradNorm = clipGradNorm(params, c.maxGradNorm);
      opt.lr = c.lr * lrMultiplier(c.schedule, state.step, c.warmupSteps, total);
      opt.step(params);
      state.step++;
      state.batchInEpoch += window.length;
      state.tokens += n;
      const now = performance.now();
      const tps = (seen * 1000) / Math.max(1, now - t0);
      log({ step: state.step, epoch: state.epoch + state.batchInEpoch / batches.length, loss: n ? lossSum / n : 0, lr: opt.lr, gradNorm, tokens: state.tokens, tokensPerSec: tps, secPerStep: (now - t0) / 1000 / Math.max(1, state.step - steps0) });
      if (c.evalEvery && state.step % c.evalEvery === 0 && state.step < total) doEval();
      if (c.saveEvery && state.step % c.saveEvery === 0) { save(); t0 = performance.now(); seen = 0; steps0 = state.step; }
      await yieldToEventLoop();
      if (run.signal?.aborted) {
        save();
        state.stopped = true;
        return state;
      }
    }
  }
  doEval();
  save();
  return state;
}

/** One progress line: `[#####-----] 12/300 loss 2.3451 lr 1.20e-4 1,234 tok/s`. */
export function formatProgress(e: LogEntry, total: number, width = 24): string {
  const frac = Math.min(1, e.step / Math.max(1, total));
  const bar = "#".repeat(Math.round(frac * width)).padEnd(width, "-");
  if (e.evalLoss !== undefined) return `[${bar}] ${e.step}/${total} eval loss ${e.evalLoss.toFixed(4)}`;
  const tps = e.tokensPerSec !== undefined ? ` ${Math.round(e.tokensPerSec).toLocaleString("en-US")} tok/s` : "";
  const eta = e.secPerStep !== undefined && e.step < total ? ` eta ${fmtDuration(e.secPerStep * (total - e.step))}` : "";
  return `[${bar}] ${e.step}/${total} epoch ${e.epoch.toFixed(2)} loss ${(e.loss ?? NaN).toFixed(4)} lr ${e.lr.toExponential(2)} |g| ${(e.gradNorm ?? NaN).toFixed(3)}${tps}${eta}`;
}

function fmtDuration(sec: number): string {
  const s = Math.round(sec);
  return s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}
