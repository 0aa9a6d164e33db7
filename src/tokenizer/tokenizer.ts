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
import type { DecodeOptions, EncodeOptions, Encoding, StreamDecoder, Tokenizer } from "./types.js";
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
    const ids: number[] = [];
    const tokens: string[] = [];
    const offsets: [number, number][] = [];
    const raw: Segment[] = [];
    this.rawAdded.split(plainPiece(text, 0), raw);
    const words: Piece[] = [];
    for (const seg of raw) {
      if (seg.id >= 0) {
        this.pushAdded(seg, ids, tokens, offsets);
        continue;
      }
      const p = this.normalizer === null ? seg.piece : this.normalizer(seg.piece);
      const segs: Segment[] = [];
      if (this.normAdded.empty) {
        if (p.s.length > 0) segs.push({ piece: p, id: -1 });
      } else this.normAdded.split(p, segs);
      for (const s of segs) {
        if (s.id >= 0) {
          this.pushAdded(s, ids, tokens, offsets);
          continue;
        }
        words.length = 0;
        if (this.pre === null) words.push(s.piece);
        else this.pre(s.piece, words);
        for (const w of words) this.pushWord(w, ids, tokens, offsets);
      }
    }
    if (SURROGATE.test(text)) toCodePointOffsets(text, offsets);
    const enc: Encoding = { ids, tokens, offsets };
    return this.post === null ? enc : this.post(enc, options?.addSpecialTokens ?? true);
  }

  private pushAdded(seg: Segment, ids: number[], tokens: string[], offsets: [number, number][]): void {
    ids.push(seg.id);
    tokens.push(this.addedById.get(seg.id)!.content);
    offsets.push(pieceSpan(seg.piece));
  }

  private pushWord(w: Piece, ids: number[], tokens: string[], offsets: [number, number][]): void {
    const t = this.model.tokenize(w.s);
    for (let i = 0; i < t.length; i += 3) {
      const id = t[i];
      ids.push(id);
      tokens.push(this.model.idToToken(id)!);
      offsets.push([startOf(w, t[i + 1]), endOf(w, t[i + 2] - 1)]);
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

  streamDecoder(options?: DecodeOptions): StreamDecoder {
    const skip = options?.skipSpecialTokens ?? false;
    return createStreamDecoder((ids) => this.decode(ids), (id) => skip && this.isSpecial(id));
  }
}

/** UTF-16 offsets → code point offsets, in place. */
export function toCodePointOffsets(text: string, offsets: [number, number][]): void {
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
  for (const o of offsets) {
    o[0] = cp[o[0]];
    // an end inside a surrogate pair (never produced, but be safe) rounds up to the character's end
    o[1] = o[1] < text.length && cp[o[1]] === cp[o[1] - 1] && o[1] > 0 ? cp[o[1]] + 1 : cp[o[1]];
  }
}
