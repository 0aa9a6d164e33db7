import type { XverseModel } from "../../src/model/xverse.js";

/** Our engine's greedy continuation from BOS (token 1), one forward per token: n generated ids. */
export function greedyFromBos(model: XverseModel, n: number): number[] {
  const cache = model.newCache(n + 1);
  const out: number[] = [];
  let tok = 1;
  for (let i = 0; i < n; i++) {
    const logits = model.forward([tok], cache);
    let best = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j] > logits[best]) best = j;
    out.push((tok = best));
  }
  return out;
}
