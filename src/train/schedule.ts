/**
 * Learning-rate multipliers as transformers' get_*_schedule_with_warmup (LambdaLR): the multiplier for optimizer
 * step k (0-based; the first update uses k = 0, so with warmup the first step has lr 0, as in transformers).
 */
import { XverseError } from "../errors.js";

export type ScheduleName = "constant" | "constant_with_warmup" | "linear" | "cosine";

export const SCHEDULES: readonly ScheduleName[] = ["constant", "constant_with_warmup", "linear", "cosine"];

export function parseSchedule(s: string): ScheduleName {
  if ((SCHEDULES as readonly string[]).includes(s)) return s as ScheduleName;
  throw new XverseError("bad_flag", `--schedule must be one of ${SCHEDULES.join(", ")}, got "${s}"`);
}

export function lrMultiplier(name: ScheduleName, step: number, warmup: number, total: number): number {
  if (name === "constant") return 1;
  if (step < warmup) return step / Math.max(1, warmup);
  if (name === "constant_with_warmup") return 1;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (name === "linear") return Math.max(0, (total - step) / Math.max(1, total - warmup));
  // cosine with num_cycles 0.5: one half-wave from 1 down to 0
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * 0.5 * 2 * progress)));
}
