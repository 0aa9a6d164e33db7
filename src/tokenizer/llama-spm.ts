/**
 * llama.cpp's SentencePiece-style tokenizer (GGUF tokenizer.ggml.model = "llama"): characters are merged by the
 * highest score of the token their concatenation forms (leftmost on ties), and symbols that end up not being
 * tokens are re-split along the merges that built them, down to byte tokens <0xNN>.
 */
import { Heap } from "./heap.js";

export interface SpmVocab {
  tokenToId: Map<string, number>;
  scores: Float32Array | number[];
  byteIds: Int32Array;
  nTokens: number;
}

interface Bigram {
  left: number;
  right: number;
  score: number;
  size: number;
}

const encoder = new TextEncoder();

/**
 * Tokenizes `text` (already space-escaped with ▁). Pushes ids and [start, end) code-unit ranges of `text`.
 */
export function spmTokenize(v: SpmVocab, text: string, ids: number[], ranges: number[]): void {
  // symbols: one per character
  const st: number[] = [];
  const len: number[] = [];
  const prev: number[] = [];
  const next: number[] = [];
  for (let i = 0; i < text.length; ) {
    const n = text.codePointAt(i)! > 0xffff ? 2 : 1;
    st.push(i);
    len.push(n);
    prev.push(st.length - 2);
    next.push(i + n === text.length ? -1 : st.length);
    i += n;
  }
  const revMerge = new Map<string, [number, number]>();
  const queue = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
  const tryAdd = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const s = text.slice(st[left], st[left] + len[left] + len[right]);
    const id = v.tokenToId.get(s);
    if (id === undefined || id >= v.nTokens) return;
    queue.push({ left, right, score: v.scores[id], size: s.length });
    revMerge.set(s, [left, right]);
  };
  for (let i = 1; i < st.length; i++) tryAdd(i - 1, i);
  for (let b = queue.pop(); b !== undefined; b = queue.pop()) {
    const l = b.left;
    const r = b.right;
    if (len[l] === 0 || len[r] === 0 || len[l] + len[r] !== b.size) continue;
    len[l] += len[r];
    len[r] = 0;
    next[l] = next[r];
    if (next[r] >= 0) prev[next[r]] = l;
    tryAdd(prev[l], l);
    tryAdd(l, next[l]);
  }
  const resegment = (from: number, n: number): void => {
    const s = text.slice(from, from + n);
    const id = v.tokenToId.get(s);
    if (id !== undefined) {
      ids.push(id);
      ranges.push(from, from + n);
      return;
    }
    const p = revMerge.get(s);
    if (p === undefined) {
      // Not a token and not built by a merge: byte tokens, each covering its character.
      for (let k = 0; k < n; ) {
        const cl = s.codePointAt(k)! > 0xffff ? 2 : 1;
        for (const byte of encoder.encode(s.slice(k, k + cl))) {
          ids.push(v.byteIds[byte]);
          ranges.push(from + k, from + k + cl);
        }
        k += cl;
      }
      return;
    }
    // The merge recorded for this text: its left part runs from the text's start to the right symbol's start.
    // (Every merge forms a token, so this only matters for ids beyond n_tokens, as in llama.cpp.)
    const la = st[p[1]] - st[p[0]];
    resegment(from, la);
    resegment(from + la, n - la);
  };
  if (st.length === 0) return;
  for (let i = 0; i !== -1; i = next[i]) resegment(st[i], len[i]);
}
