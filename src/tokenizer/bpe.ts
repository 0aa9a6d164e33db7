/**
 * Byte-pair encoding exactly as Hugging Face's Rust `BPE` model does it (merge_word + Word::merge_all):
 * characters → ids (byte fallback, unk / fuse_unk), then merges applied lowest rank first, leftmost on ties,
 * through a binary heap whose stale entries are checked by the id they would produce.
 *
 * Speed: single characters are looked up in a flat table, merge ranks in an open-addressing hash over typed
 * arrays, the merge loop runs on preallocated Int32Arrays, and whole words are cached.
 */
import { XverseError } from "../errors.js";

export interface BpeOptions {
  vocab: Map<string, number>;
  /** Merges as token pairs, in rank order. */
  merges: [string, string][];
  unkToken?: string | null;
  fuseUnk?: boolean;
  byteFallback?: boolean;
  ignoreMerges?: boolean;
  continuingSubwordPrefix?: string | null;
  endOfWordSuffix?: string | null;
}

const POS_SCALE = 16777216; // 2^24: heap key = rank * POS_SCALE + position
// Words cached before the cache starts over (Hugging Face's Rust BPE keeps 10,000 too). A word costs ~550 B
// retained; with no pre-tokenizer (stories260K) every short message is a "word", so 100,000 was ~55 MiB of a
// server's memory that grew with the number of distinct prompts (issue 17's soak drift).
const CACHE_MAX = 10_000;
const CACHE_WORD_MAX = 256;

export class BpeModel {
  readonly vocab: Map<string, number>;
  readonly vocabR: string[];
  private readonly unkId: number;
  private readonly fuseUnk: boolean;
  private readonly byteFallback: boolean;
  private readonly ignoreMerges: boolean;
  private readonly prefix: string;
  private readonly suffix: string;
  /** Single BMP character → id (-1 when absent); astral characters go through a Map. */
  private readonly bmp = new Int32Array(65536).fill(-1);
  private readonly astral = new Map<number, number>();
  private readonly byteIds = new Int32Array(256).fill(-1);
  // Merge table: open addressing on (left, right) → rank; the merged id is mergeNew[rank].
  private readonly hA: Int32Array;
  private readonly hB: Int32Array;
  private readonly hR: Int32Array;
  private readonly mask: number;
  private readonly mergeNew: Int32Array;
  private cache = new Map<string, Int32Array>();
  // Scratch for mergeWord, grown on demand.
  private cap = 0;
  private sId = new Int32Array(0);
  private sSt = new Int32Array(0);
  private sEn = new Int32Array(0);
  private sPrev = new Int32Array(0);
  private sNext = new Int32Array(0);
  private heap = new Float64Array(0);

  constructor(o: BpeOptions) {
    this.vocab = o.vocab;
    this.vocabR = [];
    for (const [tok, id] of o.vocab) this.vocabR[id] = tok;
    this.prefix = o.continuingSubwordPrefix ?? "";
    this.suffix = o.endOfWordSuffix ?? "";
    this.fuseUnk = o.fuseUnk ?? false;
    this.byteFallback = o.byteFallback ?? false;
    this.ignoreMerges = o.ignoreMerges ?? false;
    this.unkId = -1;
    if (o.unkToken != null) {
      const id = o.vocab.get(o.unkToken);
      // The Rust library only fails when an unknown character actually needs the unk token; failing at load
      // time would reject files it accepts, so remember the problem instead.
      this.unkId = id === undefined ? -2 : id;
      this.unkName = o.unkToken;
    }
    for (const [tok, id] of o.vocab) {
      const cp = tok.codePointAt(0)!;
      if (tok.length === 1) this.bmp[cp] = id;
      else if (tok.length === 2 && cp > 0xffff) this.astral.set(cp, id);
      if (tok.length === 6 && tok.startsWith("<0x") && tok.endsWith(">")) {
        const hex = tok.slice(3, 5);
        if (/^[0-9A-F]{2}$/.test(hex)) this.byteIds[parseInt(hex, 16)] = id;
      }
    }
    let size = 16;
    while (size < o.merges.length * 2) size *= 2;
    this.mask = size - 1;
    this.hA = new Int32Array(size).fill(-1);
    this.hB = new Int32Array(size);
    this.hR = new Int32Array(size);
    this.mergeNew = new Int32Array(o.merges.length);
    const plen = this.prefix.length;
    for (let r = 0; r < o.merges.length; r++) {
      const [a, b] = o.merges[r];
      const ia = o.vocab.get(a);
      const ib = o.vocab.get(b);
      if (ia === undefined || ib === undefined) {
        throw new XverseError("bad_tokenizer", `BPE merge ${r} ("${a}" "${b}") uses a token that is not in the vocab; the tokenizer file is inconsistent`);
      }
      // With a continuing-subword prefix the right part loses its prefix in the merged token.
      const merged = a + (plen > 0 && b.startsWith(this.prefix) ? b.slice(plen) : b);
      const inew = o.vocab.get(merged);
      if (inew === undefined) {
        throw new XverseError("bad_tokenizer", `BPE merge ${r} ("${a}" "${b}") produces "${merged}", which is not in the vocab`);
      }
      this.mergeNew[r] = inew;
      this.setRank(ia, ib, r);
    }
  }

  private unkName = "";

  private setRank(a: number, b: number, r: number): void {
    let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77)) & this.mask;
    for (;;) {
      if (this.hA[h] === -1 || (this.hA[h] === a && this.hB[h] === b)) {
        // A repeated pair keeps its last rank, as the Rust HashMap collect does.
        this.hA[h] = a;
        this.hB[h] = b;
        this.hR[h] = r;
        return;
      }
      h = (h + 1) & this.mask;
    }
  }

  /** The merge rank of (a, b), or -1. */
  rank(a: number, b: number): number {
    let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77)) & this.mask;
    for (;;) {
      const x = this.hA[h];
      if (x === -1) return -1;
      if (x === a && this.hB[h] === b) return this.hR[h];
      h = (h + 1) & this.mask;
    }
  }

  get vocabSize(): number {
    return this.vocabR.length;
  }

  /**
   * Tokens of one pre-tokenized word as (id, start, end) triples, start/end in UTF-16 units of `w`.
   * The returned array may be shared through the cache: do not modify it.
   */
  tokenize(w: string): Int32Array {
    if (w.length === 0) return new Int32Array(0);
    if (this.ignoreMerges) {
      const id = this.vocab.get(w);
      if (id !== undefined) return Int32Array.of(id, 0, w.length);
    }
    const hit = this.cache.get(w);
    if (hit !== undefined) return hit;
    const r = this.mergeWord(w);
    if (w.length <= CACHE_WORD_MAX) {
      if (this.cache.size >= CACHE_MAX) this.cache = new Map();
      this.cache.set(w, r);
    }
    return r;
  }

  private grow(n: number): void {
    if (n <= this.cap) return;
    const c = Math.max(n, this.cap * 2, 64);
    this.sId = new Int32Array(c);
    this.sSt = new Int32Array(c);
    this.sEn = new Int32Array(c);
    this.sPrev = new Int32Array(c);
    this.sNext = new Int32Array(c);
    this.heap = new Float64Array(c + 1);
    this.cap = c;
  }

  private unk(): number {
    if (this.unkId === -2) {
      throw new XverseError("bad_tokenizer", `the BPE unk_token "${this.unkName}" is not in the vocab; fix the tokenizer file`);
    }
    return this.unkId;
  }

  private mergeWord(w: string): Int32Array {
    this.grow(w.length * 4 + 4);
    const id = this.sId;
    const st = this.sSt;
    const en = this.sEn;
    let n = 0;
    // Symbol offsets follow the Rust Word: cumulative byte lengths. They equal the characters' real positions
    // unless a character is dropped (no unk, no byte token) or bytes overtake a pending unk; then we map
    // byte positions back to characters at the end.
    let anomaly = false;
    let pendUnk = -1;
    let pendSt = 0;
    let pendEn = 0;
    const slow = this.prefix.length > 0 || this.suffix.length > 0;
    for (let i = 0; i < w.length; ) {
      const cp = w.codePointAt(i)!;
      const len = cp > 0xffff ? 2 : 1;
      let tid: number;
      let piece = "";
      if (!slow) {
        tid = len === 1 ? this.bmp[cp] : (this.astral.get(cp) ?? -1);
      } else {
        piece = (i > 0 ? this.prefix : "") + w.slice(i, i + len) + (i + len === w.length ? this.suffix : "");
        tid = this.vocab.get(piece) ?? -1;
      }
      if (tid >= 0) {
        if (pendUnk >= 0) {
          id[n] = pendUnk; st[n] = pendSt; en[n] = pendEn; n++;
          pendUnk = -1;
        }
        id[n] = tid; st[n] = i; en[n] = i + len; n++;
      } else {
        let done = false;
        if (this.byteFallback) {
          const bytes = slow ? UTF8.encode(piece) : utf8Of(cp);
          let ok = true;
          for (const b of bytes) if (this.byteIds[b] < 0) ok = false;
          if (ok) {
            if (pendUnk >= 0) anomaly = true;
            this.grow(n + bytes.length + 4);
            for (const b of bytes) {
              this.sId[n] = this.byteIds[b]; this.sSt[n] = i; this.sEn[n] = i + len; n++;
            }
            done = true;
          }
        }
        if (!done) {
          if (this.unkId !== -1) {
            const u = this.unk();
            if (pendUnk >= 0 && this.fuseUnk) pendEn = i + len;
            else {
              if (pendUnk >= 0) {
                id[n] = pendUnk; st[n] = pendSt; en[n] = pendEn; n++;
              }
              pendUnk = u; pendSt = i; pendEn = i + len;
            }
          } else anomaly = true; // dropped silently, as the Rust library does
        }
      }
      i += len;
    }
    if (pendUnk >= 0) {
      this.sId[n] = pendUnk; this.sSt[n] = pendSt; this.sEn[n] = pendEn; n++;
    }
    if (anomaly) this.cumulativeOffsets(w, n);
    n = this.mergeAll(n);
    const out = new Int32Array(3 * n);
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      out[j] = this.sId[i];
      out[j + 1] = this.sSt[i];
      out[j + 2] = this.sEn[i];
    }
    return out;
  }

  /** Rewrites symbol offsets the way Word computes them: running sums of byte lengths, read back in characters. */
  private cumulativeOffsets(w: string, n: number): void {
    const bytes = UTF8.encode(w);
    // byte → [unit start, unit end) of the character holding it
    const bs = new Int32Array(bytes.length);
    const be = new Int32Array(bytes.length);
    for (let i = 0, b = 0; i < w.length; ) {
      const cp = w.codePointAt(i)!;
      const len = cp > 0xffff ? 2 : 1;
      const nb = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      for (let k = 0; k < nb; k++) { bs[b + k] = i; be[b + k] = i + len; }
      b += nb; i += len;
    }
    let pos = 0;
    for (let i = 0; i < n; i++) {
      // A byte token counts one byte; a character token (or unk) the UTF-8 length of what it covers.
      const isByte = this.sEn[i] - this.sSt[i] <= 2 && this.byteIds.includes(this.sId[i]) && utf8Len(w, this.sSt[i], this.sEn[i]) > 1;
      const len = isByte ? 1 : utf8Len(w, this.sSt[i], this.sEn[i]);
      this.sSt[i] = bs[pos];
      this.sEn[i] = be[pos + len - 1];
      pos += len;
    }
  }

  /** Word::merge_all: lowest rank first, leftmost on ties; returns the symbol count after compaction. */
  private mergeAll(n: number): number {
    const id = this.sId, st = this.sSt, en = this.sEn, prev = this.sPrev, next = this.sNext, heap = this.heap;
    for (let i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
    let hn = 0;
    const push = (key: number): void => {
      let i = hn++;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p] <= key) break;
        heap[i] = heap[p];
        i = p;
      }
      heap[i] = key;
    };
    for (let i = 0; i + 1 < n; i++) {
      const r = this.rank(id[i], id[i + 1]);
      if (r >= 0) push(r * POS_SCALE + i);
    }
    let alive = n;
    while (hn > 0) {
      const top = heap[0];
      // pop
      const last = heap[--hn];
      if (hn > 0) {
        let i = 0;
        for (;;) {
          let c = 2 * i + 1;
          if (c >= hn) break;
          if (c + 1 < hn && heap[c + 1] < heap[c]) c++;
          if (heap[c] >= last) break;
          heap[i] = heap[c];
          i = c;
        }
        heap[i] = last;
      }
      const rank = Math.floor(top / POS_SCALE);
      const pos = top - rank * POS_SCALE;
      if (en[pos] === -1) continue; // merged away
      const nx = next[pos];
      if (nx === -1) continue;
      const cur = this.rank(id[pos], id[nx]);
      if (cur < 0 || this.mergeNew[cur] !== this.mergeNew[rank]) continue; // stale entry
      id[pos] = this.mergeNew[rank];
      en[pos] = en[nx];
      en[nx] = -1;
      alive--;
      const nn = next[nx];
      next[pos] = nn;
      if (nn !== -1) prev[nn] = pos;
      const pv = prev[pos];
      if (pv >= 0) {
        const r = this.rank(id[pv], id[pos]);
        if (r >= 0) push(r * POS_SCALE + pv);
      }
      if (nn !== -1) {
        const r = this.rank(id[pos], id[nn]);
        if (r >= 0) push(r * POS_SCALE + pos);
      }
    }
    if (alive === n) return n;
    let k = 0;
    for (let i = 0; i < n; i++) {
      if (en[i] === -1) continue;
      id[k] = id[i]; st[k] = st[i]; en[k] = en[i]; k++;
    }
    return k;
  }
}

// TextEncoder rather than Buffer: the tokenizer also runs in browsers
const UTF8 = new TextEncoder();

function utf8Of(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 63)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
}

function utf8Len(w: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; ) {
    const cp = w.codePointAt(i)!;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    i += cp > 0xffff ? 2 : 1;
  }
  return n;
}
