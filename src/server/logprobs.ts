/**
 * Log-probabilities for /v1/completions: the prompt's own tokens (echo + logprobs, what lm-eval and our eval
 * harness use for log-likelihoods) and the top-k alternatives of a logits row.
 */
import { vocabPieces } from "../chat/constrained.js";
import type { XverseModel } from "../model/xverse.js";
import type { Tokenizer } from "../tokenizer/types.js";
import type { TokenLogprob } from "./protocol.js";
import { yieldToEventLoop } from "../event-loop.js";

const pieceCache = new WeakMap<Tokenizer, string[]>();

/** The text each id adds mid-sequence (special tokens: their token string), for top_logprobs keys. Built once. */
export function tokenPieces(tok: Tokenizer): string[] {
  let p = pieceCache.get(tok);
  if (!p) {
    const raw = vocabPieces(tok);
    p = raw.map((s, id) => s ?? tok.idToToken(id) ?? `<${id}>`);
    pieceCache.set(tok, p);
  }
  return p;
}

export function logSumExp(row: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  if (max === -Infinity) return max;
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - max);
  return max + Math.log(s);
}

/** The k most likely ids of a row (descending) as {piece: logprob}; an insertion list, since k ≤ 20. */
export function topLogprobs(row: Float32Array, k: number, lse: number, pieces: string[]): Record<string, number> {
  const ids: number[] = [];
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (ids.length === k && v <= row[ids[k - 1]]) continue;
    let j = ids.length < k ? ids.length : k - 1;
    while (j > 0 && row[ids[j - 1]] < v) j--;
    ids.splice(j, 0, i);
    if (ids.length > k) ids.pop();
  }
  const out: Record<string, number> = {};
  // two ids can share a piece (e.g. a byte token and a merged one): keep the likelier, which comes first
  for (const id of ids) if (!(pieces[id] in out)) out[pieces[id]] = row[id] - lse;
  return out;
}

/**
 * Scores every prompt token given the ones before it (the first gets null, as OpenAI does). The forward pass
 * runs in chunks so a long prompt never materialises (T, vocab) logits at once; `yieldEvery` lets other
 * requests' tokens through between chunks.
 */
export async function promptLogprobs(
  model: XverseModel,
  ids: readonly number[],
  k: number,
  pieces: readonly string[],
  signal?: AbortSignal,
): Promise<{ logprob: number | null; top: Record<string, number> | null }[]> {
  const V = model.config.vocabSize;
  const chunk = Math.max(1, Math.min(256, Math.floor((1 << 24) / V)));
  const cache = model.newCache(ids.length);
  const buf = new Float32Array(Math.min(chunk, Math.max(1, ids.length - 1)) * V); // one logits buffer for every chunk
  const out: { logprob: number | null; top: Record<string, number> | null }[] = [{ logprob: null, top: null }];
  for (let s = 0; s < ids.length - 1; s += chunk) {
    if (signal?.aborted) break;
    // rows s … e−1 predict tokens s+1 … e; the last prompt token predicts nothing we need
    const e = Math.min(ids.length - 1, s + chunk);
    const logits = await model.forwardAsync(ids.slice(s, e), cache, { logits: "all", out: buf.subarray(0, (e - s) * V) });
    for (let t = 0; t < e - s; t++) {
      const row = logits.subarray(t * V, (t + 1) * V);
      const lse = logSumExp(row);
      const next = ids[s + t + 1];
      out.push({ logprob: row[next] - lse, top: k > 0 ? topLogprobs(row, k, lse, pieces as string[]) : null });
    }
    await yieldToEventLoop();
  }
  return out;
}

/** The prompt's text as per-token deltas (so the pieces join to exactly the echoed text) with code-point offsets. */
export function promptPieces(tok: Tokenizer, ids: readonly number[]): { text: string; tokens: string[]; offsets: number[] } {
  const dec = tok.streamDecoder({ skipSpecialTokens: true });
  const tokens: string[] = [];
  const offsets: number[] = [];
  let text = "", len = 0;
  ids.forEach((id, i) => {
    let d = dec.push(id);
    if (i === ids.length - 1) d += dec.flush();
    offsets.push(len);
    tokens.push(d);
    text += d;
    len += [...d].length;
  });
  return { text, tokens, offsets };
}

export function toTokenLogprobs(p: { text: string; tokens: string[]; offsets: number[] }, lp: { logprob: number | null; top: Record<string, number> | null }[] | null): TokenLogprob[] {
  return p.tokens.map((token, i) => ({ token, offset: p.offsets[i], logprob: lp?.[i]?.logprob ?? null, top: lp?.[i]?.top ?? null }));
}
