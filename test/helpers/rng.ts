import { Rng } from "../../src/generate/rng.js";

/** Uniform [0, 1) draws from the project's seeded PRNG, for reproducible test data. */
export function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}
