/**
 * Block keys for prefix reuse: a 64-bit hash chained over the tokens of every block from the start of the
 * sequence (key(j) = H(key(j−1), tokens of block j)), so equal keys mean equal whole prefixes — as vLLM's
 * prefix caching and llama.cpp's slot reuse decide. The pool also compares the stored tokens and parent key on
 * every hit, so a hash collision can cost a miss but never wrong keys and values.
 */

const ROOT = "0";

/** Two 32-bit murmur-style lanes over (parent, tokens); returned as a short string usable as a Map key. */
export function blockKey(parent: string | null, tokens: ArrayLike<number>, from: number, n: number): string {
  let h1 = 0x9e3779b9 | 0, h2 = 0x85ebca6b | 0;
  const p = parent ?? ROOT;
  for (let i = 0; i < p.length; i++) {
    h1 = mix(h1, p.charCodeAt(i));
    h2 = mix(h2, p.charCodeAt(i) ^ 0x5bd1e995);
  }
  for (let i = 0; i < n; i++) {
    const t = tokens[from + i] | 0;
    h1 = mix(h1, t);
    h2 = mix(h2, t ^ 0x27d4eb2f);
  }
  h1 = fmix(h1 ^ n);
  h2 = fmix(h2 ^ (n * 31));
  return (h1 >>> 0).toString(36) + "." + (h2 >>> 0).toString(36);
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
