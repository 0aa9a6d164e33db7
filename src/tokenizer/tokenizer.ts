/**
 * The Hugging Face tokenizer pipeline: added tokens → normalizer → normalized added tokens → pre-tokenizer →
 * model → post-processor, and decode through the decoder chain. Offsets are tracked in UTF-16 units of the
 * input and reported in code points, as the Rust library's node binding does.
 */
import { type AddedToken, AddedMatcher, type Segment, pieceSpan } from "./added-tokens.js";
import type { Decoder } from "./decoders.js";
import type { Normalizer } from "./normalizers.js";
import { type Piece, endOf, plainPiece, startOf } from "./piece.js";
import type { PostProcessor } from "./post-processors.js";
import type { PreTokenizer } from "./pre-tokenizers.js";
import { createStreamDecoder } from "./stream.js";
import type { DecodeOptions, EncodeOptions, Encoding, StreamDecodeOptions, StreamDecoder, Tokenizer } from "./types.js";
import { normalizeString } from "./normalizers.js";

/** What the pipeline needs from a model: words → (id, start, end) triples, and the vocabulary. */
export interface WordModel {
  tokenize(word: string): Int32Array;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  readonly vocabSize: number;
}

export interface PipelineParts {
  model: WordModel;
  added: AddedToken[];
  normalizer: Normalizer | null;
  preTokenizer: PreTokenizer | null;
  postProcessor: PostProcessor | null;
  decoder: Decoder | null;
  bosId?: number | null;
  eosId?: number | null;
  padId?: number | null;
}

const SURROGATE = /[\ud800-\udfff]/;

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  private readonly model: WordModel;
  private readonly normalizer: Normalizer | null;
  private readonly pre: PreTokenizer | null;
  private readonly post: PostProcessor | null;
  private readonly decoder: Decoder | null;
  private readonly rawAdded: AddedMatcher;
  private readonly normAdded: AddedMatcher;
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly specialContents = new Set<string>();

  constructor(parts: PipelineParts) {
    this.model = parts.model;
    this.normalizer = parts.normalizer;
    this.pre = parts.preTokenizer;
    this.post = parts.postProcessor;
    this.decoder = parts.decoder;
    let size = parts.model.vocabSize;
    for (const t of parts.added) {
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
      if (t.special) this.specialContents.add(t.content);
      size = Math.max(size, t.id + 1);
    }
    this.vocabSize = size;
    const raw = parts.added.filter((t) => !t.normalized);
    const norm = parts.added.filter((t) => t.normalized);
    this.rawAdded = new AddedMatcher(raw, raw.map((t) => t.content));
    this.normAdded = new AddedMatcher(norm, norm.map((t) => normalizeString(this.normalizer, t.content)));
    this.bosId = parts.bosId ?? null;
    this.eosId = parts.eosId ?? null;
    this.padId = parts.padId ?? null;
  }

  encode(text: string, options?: EncodeOptions): Encoding {
    const out = new EncodingBuilder();
    const raw: Segment[] = [];
    this.rawAdded.split(plainPiece(text, 0), raw);
    // Words are tokenized as the pre-tokenizer produces them.
    const words = { push: (w: Piece): void => this.pushWord(w, out) };
    for (const seg of raw) {
      if (seg.id >= 0) {
        this.pushAdded(seg, out);
        continue;
      }
      const p = this.normalizer === null ? seg.piece : this.normalizer(seg.piece);
      const segs: Segment[] = [];
      if (this.normAdded.empty) {
        if (p.s.length > 0) segs.push({ piece: p, id: -1 });
      } else this.normAdded.split(p, segs);
      for (const s of segs) {
        if (s.id >= 0) {
          this.pushAdded(s, out);
          continue;
        }
        if (this.pre === null) this.pushWord(s.piece, out);
        else this.pre(s.piece, words);
      }
    }
    const enc = out.finish(SURROGATE.test(text) ? text : null);
    return this.post === null ? enc : this.post(enc, options?.addSpecialTokens ?? true);
  }

  private pushAdded(seg: Segment, out: EncodingBuilder): void {
    const [a, b] = pieceSpan(seg.piece);
    // The token string is the matched text, whitespace taken by lstrip / rstrip included (as in Rust).
    out.push(seg.id, seg.piece.s, a, b);
  }

  private pushWord(w: Piece, out: EncodingBuilder): void {
    const t = this.model.tokenize(w.s);
    const compact = w.a === null && w.k === 0;
    for (let i = 0; i < t.length; i += 3) {
      const id = t[i];
      if (compact) out.push(id, this.model.idToToken(id)!, w.o + t[i + 1], w.o + t[i + 2]);
      else out.push(id, this.model.idToToken(id)!, startOf(w, t[i + 1]), endOf(w, t[i + 2] - 1));
    }
  }

  /** The token strings decode() feeds the decoder (unknown ids are skipped, as in the Rust library). */
  decodeTokens(ids: ArrayLike<number>, skipSpecial: boolean): string[] {
    const out: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const t = this.addedById.get(id)?.content ?? this.model.idToToken(id);
      if (t === undefined) continue;
      if (skipSpecial && this.specialContents.has(t)) continue;
      out.push(t);
    }
    return out;
  }

  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    const tokens = this.decodeTokens(ids, options?.skipSpecialTokens ?? false);
    return this.decoder === null ? tokens.join(" ") : this.decoder(tokens).join("");
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.model.idToToken(id);
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.model.tokenToId(token);
  }

  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special === true;
  }

  streamDecoder(options?: StreamDecodeOptions): StreamDecoder {
    const skip = options?.skipSpecialTokens ?? false;
    return createStreamDecoder((ids) => this.decode(ids), (id) => skip && this.isSpecial(id), options?.context);
  }
}

/**
 * Collects ids, token strings and offsets (in a growable Int32Array: one encode of 1 MB makes ~600k tokens, and
 * 600k small [start, end] arrays are most of the garbage). The [start, end] pairs are built when first read.
 */
class EncodingBuilder {
  ids: number[] = [];
  tokens: string[] = [];
  off = new Int32Array(256);
  push(id: number, token: string, start: number, end: number): void {
    const n = this.ids.length;
    if (2 * n + 2 > this.off.length) {
      const bigger = new Int32Array(this.off.length * 2);
      bigger.set(this.off);
      this.off = bigger;
    }
    this.off[2 * n] = start;
    this.off[2 * n + 1] = end;
    this.ids.push(id);
    this.tokens.push(token);
  }
  /** `text` when offsets must be converted from UTF-16 units to code points. */
  finish(text: string | null): Encoding {
    const off = this.off.subarray(0, 2 * this.ids.length);
    if (text !== null) toCodePointOffsets(text, off);
    return new LazyEncoding(this.ids, this.tokens, off);
  }
}

class LazyEncoding implements Encoding {
  private pairs: [number, number][] | null = null;
  constructor(readonly ids: number[], readonly tokens: string[], private readonly flat: Int32Array) {}
  get offsets(): [number, number][] {
    if (this.pairs === null) {
      const p: [number, number][] = new Array(this.ids.length);
      for (let i = 0; i < p.length; i++) p[i] = [this.flat[2 * i], this.flat[2 * i + 1]];
      this.pairs = p;
    }
    return this.pairs;
  }
  set offsets(v: [number, number][]) {
    this.pairs = v;
  }
  toJSON(): Encoding {
    return { ids: this.ids, tokens: this.tokens, offsets: this.offsets };
  }
}

/** UTF-16 offsets → code point offsets, in place; `offsets` holds [start, end] pairs, flat or nested. */
export function toCodePointOffsets(text: string, offsets: [number, number][] | Int32Array): void {
  const cp = new Int32Array(text.length + 1);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    cp[i] = n;
    const c = text.charCodeAt(i);
    // a low surrogate belongs to the character its high surrogate started
    if (!(c >= 0xdc00 && c <= 0xdfff && i > 0 && text.charCodeAt(i - 1) >= 0xd800 && text.charCodeAt(i - 1) <= 0xdbff)) n++;
    else cp[i] = n - 1;
  }
  cp[text.length] = n;
  // an end inside a surrogate pair (never produced, but be safe) rounds up to the character's end
  const end = (e: number): number => (e > 0 && e < text.length && cp[e] === cp[e - 1] ? cp[e] + 1 : cp[e]);
  if (offsets instanceof Int32Array) {
    for (let i = 0; i < offsets.length; i += 2) {
      offsets[i] = cp[offsets[i]];
      offsets[i + 1] = end(offsets[i + 1]);
    }
    return;
  }
  for (const o of offsets) {
    o[0] = cp[o[0]];
    o[1] = end(o[1]);
  }
}
