import { argmax } from "../../src/generate/processors.js";
import type { XverseModel } from "../../src/model/xverse.js";

/** Our engine's greedy continuation from BOS (token 1), one forward per token: n generated ids. */
export function greedyFromBos(model: XverseModel, n: number): number[] {
  const cache = model.newCache(n + 1);
  const out: number[] = [];
  let tok = 1;
  for (let i = 0; i < n; i++) out.push((tok = argmax(model.forward([tok], cache))));
  return out;
}
