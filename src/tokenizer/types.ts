/** One encoded text: ids, their token strings and [start, end) offsets in Unicode code points of the input. */
export interface Encoding {
  ids: number[];
  tokens: string[];
  offsets: [number, number][];
}

export interface EncodeOptions {
  /** Apply the post-processor (e.g. prepend BOS). Default true, as in Hugging Face `tokenizers`. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export interface StreamDecodeOptions extends DecodeOptions {
  /**
   * The ids before the stream (a prompt): the deltas then continue its text, joining to decode(context + ids)
   * minus decode(context) — a SentencePiece-style first token keeps its leading space ("Zoo" → " was"). Only the
   * last few ids are used. Without it the stream decodes on its own, like decode(ids) ("was").
   */
  context?: ArrayLike<number>;
}

/** Turns ids into text deltas; never emits half a UTF-8 sequence or a wrong leading space. */
export interface StreamDecoder {
  /** Feed one id; returns the new text it completes ("" when it needs more ids). */
  push(id: number): string;
  /** Any text still held back (e.g. an incomplete byte sequence rendered as U+FFFD). */
  flush(): string;
}

/** The tokenizer interface every model-facing part of the library uses. */
export interface Tokenizer {
  readonly vocabSize: number;
  /** Special ids, where the tokenizer files name them. */
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly padId: number | null;
  encode(text: string, options?: EncodeOptions): Encoding;
  decode(ids: ArrayLike<number>, options?: DecodeOptions): string;
  idToToken(id: number): string | undefined;
  tokenToId(token: string): number | undefined;
  /** True for added tokens flagged special (what skipSpecialTokens removes). */
  isSpecial(id: number): boolean;
  streamDecoder(options?: StreamDecodeOptions): StreamDecoder;
}
