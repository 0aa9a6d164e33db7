/**
 * Hugging Face's logits processors, in its order (repetition penalty → temperature → top-k → top-p), as
 * functions that rewrite a logits row in place and return it; then softmax and sampling.
 * Removed tokens get −Infinity, exactly as HF's filter_value.
 */
import type { Rng } from "./rng.js";

export type LogitsProcessor = (ids: readonly number[], logits: Float32Array) => Float32Array;

/** HF RepetitionPenaltyLogitsProcessor: every id seen (prompt + generated) once: /p if > 0, ·p otherwise. */
export function repetitionPenalty(penalty: number): LogitsProcessor {
  return (ids, logits) => {
    if (penalty === 1) return logits;
    const seen = new Set(ids);
    for (const id of seen) {
      const v = logits[id];
      logits[id] = v < 0 ? v * penalty : v / penalty;
    }
    return logits;
  };
}

/**
 * HF TemperatureLogitsWarper (logits / t), shifted by the row's max first: softmax does not change, but a tiny t
 * (1e-300 is legal in OpenAI's [0, 2]) then sends every non-max logit to −Infinity and the max to 0 — greedy among
 * the tied best, the exact t → 0 limit — instead of ±Infinity everywhere and NaN probabilities.
 */
export function temperature(t: number): LogitsProcessor {
  return (_ids, logits) => {
    if (t === 1) return logits;
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
    if (!Number.isFinite(max)) return logits; // nothing finite to scale: the sampler sees the row as it is
    for (let i = 0; i < logits.length; i++) logits[i] = (logits[i] - max) / t;
    return logits;
  };
}

/** HF TopKLogitsWarper: keep every token ≥ the k-th largest value (ties with it kept). */
export function topK(k: number): LogitsProcessor {
  return (_ids, logits) => {
    if (k <= 0 || k >= logits.length) return logits;
    const kth = kthLargest(logits, k);
    for (let i = 0; i < logits.length; i++) if (logits[i] < kth) logits[i] = -Infinity;
    return logits;
  };
}

/**
 * HF TopPLogitsWarper: sort ascending, drop the tokens whose cumulative probability is ≤ 1 − p,
 * always keeping the most likely one.
 */
export function topP(p: number): LogitsProcessor {
  return (_ids, logits) => {
    if (p >= 1) return logits;
    const n = logits.length;
    const order = liveIndices(logits);
    order.sort((a, b) => logits[a] - logits[b] || b - a); // ascending; HF's stable sort on ties
    const probs = softmaxOf(logits, order);
    let cum = 0;
    for (let j = 0; j < order.length - 1; j++) { // the last (most likely) is always kept
      cum += probs[j];
      if (cum <= 1 - p) logits[order[j]] = -Infinity;
      else break;
    }
    void n;
    return logits;
  };
}

/** The processors generation_config asks for, in HF order. */
export function processorChain(o: { repetitionPenalty?: number; temperature?: number; topK?: number; topP?: number; sample: boolean }): LogitsProcessor[] {
  const chain: LogitsProcessor[] = [];
  if (o.repetitionPenalty !== undefined && o.repetitionPenalty !== 1) chain.push(repetitionPenalty(o.repetitionPenalty));
  if (o.sample) {
    // HF only warps when sampling: temperature, top-k, top-p
    if (o.temperature !== undefined && o.temperature !== 1) chain.push(temperature(o.temperature));
    if (o.topK) chain.push(topK(o.topK));
    if (o.topP !== undefined && o.topP < 1) chain.push(topP(o.topP));
  }
  return chain;
}

export function applyChain(chain: LogitsProcessor[], ids: readonly number[], logits: Float32Array): Float32Array {
  for (const p of chain) logits = p(ids, logits);
  return logits;
}

/** Softmax of a whole row into `out` (f64 accumulation). */
export function softmax(logits: Float32Array, out: Float32Array = new Float32Array(logits.length)): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const e = logits[i] === -Infinity ? 0 : Math.exp(logits[i] - max);
    out[i] = e;
    sum += e;
  }
  for (let i = 0; i < logits.length; i++) out[i] /= sum;
  return out;
}

/** log softmax(logits)[id], without allocating. */
export function logProbOf(logits: Float32Array, id: number): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return logits[id] - max - Math.log(sum);
}

/** Greedy choice: the highest logit, lowest id on ties (torch.argmax). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** Multinomial draw from softmax(logits) with a seeded RNG. */
export function sample(logits: Float32Array, rng: Rng): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  if (max === Infinity) return sampleInfinite(logits, rng);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] !== -Infinity) sum += Math.exp(logits[i] - max);
  let r = rng.next() * sum;
  let lastLive = -1;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] === -Infinity) continue;
    lastLive = i;
    r -= Math.exp(logits[i] - max);
    if (r < 0) return i;
  }
  return lastLive; // rounding left a sliver: the last live token
}

/**
 * A row with +Infinity logits (a repetition penalty near 0 divides a positive logit by it): exp(∞ − ∞) is NaN, but
 * the limit distribution is uniform over the infinite entries, so draw among those.
 */
function sampleInfinite(logits: Float32Array, rng: Rng): number {
  let n = 0;
  for (let i = 0; i < logits.length; i++) if (logits[i] === Infinity) n++;
  let k = Math.min(n - 1, Math.floor(rng.next() * n));
  for (let i = 0; i < logits.length; i++) if (logits[i] === Infinity && k-- === 0) return i;
  return argmax(logits);
}

function liveIndices(logits: Float32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i] !== -Infinity) out.push(i);
  return out;
}

function softmaxOf(logits: Float32Array, idx: number[]): Float64Array {
  let max = -Infinity;
  for (const i of idx) if (logits[i] > max) max = logits[i];
  const out = new Float64Array(idx.length);
  let sum = 0;
  for (let j = 0; j < idx.length; j++) { out[j] = Math.exp(logits[idx[j]] - max); sum += out[j]; }
  for (let j = 0; j < idx.length; j++) out[j] /= sum;
  return out;
}

/** The k-th largest finite-or-not value of a row (quickselect on a copy). */
function kthLargest(a: Float32Array, k: number): number {
  const v = Float32Array.from(a);
  let lo = 0, hi = v.length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = v[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (v[i] > pivot) i++;
      while (v[j] < pivot) j--;
      if (i <= j) { const t = v[i]; v[i] = v[j]; v[j] = t; i++; j--; }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return v[target];
}
