/**
 * tokenizer.json (+ the special tokens tokenizer_config.json names) → a Tokenizer, from parsed JSON or text:
 * no file access, so browsers use it too (load.ts reads the files in Node).
 */
import { XverseError } from "../errors.js";
import type { AddedToken } from "./added-tokens.js";
import { BpeModel } from "./bpe.js";
import { buildDecoder } from "./decoders.js";
import { buildNormalizer } from "./normalizers.js";
import { buildPostProcessor } from "./post-processors.js";
import { buildPreTokenizer } from "./pre-tokenizers.js";
import { checkTokenizerShape } from "./shape.js";
import { HfTokenizer, type WordModel } from "./tokenizer.js";
import type { Tokenizer } from "./types.js";

type Json = Record<string, any>;

/** What tokenizer_config.json / special_tokens_map.json say about special tokens (strings or {content}). */
export interface TokenizerConfig {
  bos_token?: string | { content: string } | null;
  eos_token?: string | { content: string } | null;
  pad_token?: string | { content: string } | null;
  [k: string]: unknown;
}

export function tokenizerFromJson(json: Json | string, config: TokenizerConfig = {}): Tokenizer {
  let j: Json;
  try {
    j = typeof json === "string" ? (JSON.parse(json) as Json) : json;
  } catch (e) {
    throw new XverseError("bad_tokenizer", `tokenizer.json is not valid JSON (${(e as Error).message})`);
  }
  if (j === null || typeof j !== "object" || j.model === null || typeof j.model !== "object") {
    throw new XverseError("bad_tokenizer", "tokenizer.json has no \"model\" object; is this a Hugging Face tokenizer.json?");
  }
  checkTokenizerShape(j);
  try {
    return buildTokenizer(j, config);
  } catch (e) {
    if (e instanceof XverseError) throw e;
    // a shape checkTokenizerShape does not know yet: still an error about the file, not a crash
    throw new XverseError("bad_tokenizer", `tokenizer.json has a field of an unexpected shape (${(e as Error)?.message ?? String(e)}); re-download or re-export it`);
  }
}

function buildTokenizer(j: Json, config: TokenizerConfig): Tokenizer {
  const model = buildModel(j.model);
  const added: AddedToken[] = ((j.added_tokens ?? []) as Json[]).map((t) => ({
    id: Number(t.id),
    content: String(t.content),
    singleWord: t.single_word === true,
    lstrip: t.lstrip === true,
    rstrip: t.rstrip === true,
    normalized: t.normalized === undefined ? t.special !== true : t.normalized === true,
    special: t.special === true,
  }));
  const normalizer = buildNormalizer(j.normalizer);
  const preTokenizer = buildPreTokenizer(j.pre_tokenizer);
  const decoder = buildDecoder(j.decoder);
  const tokenToIdAll = (t: string): number | undefined => added.find((a) => a.content === t)?.id ?? model.tokenToId(t);
  const postProcessor = buildPostProcessor(j.post_processor);
  const idOf = (v: TokenizerConfig["bos_token"]): number | null => {
    if (v == null) return null;
    const name = typeof v === "string" ? v : v.content;
    return tokenToIdAll(name) ?? null;
  };
  return new HfTokenizer({
    model,
    added,
    normalizer,
    preTokenizer,
    postProcessor,
    decoder,
    bosId: idOf(config.bos_token),
    eosId: idOf(config.eos_token),
    padId: idOf(config.pad_token),
  });
}

function buildModel(m: Json): WordModel {
  const type = m.type ?? (m.merges !== undefined ? "BPE" : undefined);
  if (type !== "BPE") throw new XverseError("unsupported", `model type ${type} is not supported (only BPE)`);
  if (m.dropout != null && m.dropout !== 0) throw new XverseError("unsupported", "BPE dropout is not supported (it makes encoding random)");
  const vocab = new Map<string, number>();
  for (const [tok, id] of Object.entries(m.vocab ?? {})) vocab.set(tok, Number(id));
  const merges: [string, string][] = ((m.merges ?? []) as unknown[]).map((x, i) => {
    if (Array.isArray(x) && x.length === 2) return [String(x[0]), String(x[1])];
    if (typeof x === "string") {
      // Legacy "a b" spelling: split on the first space (tokens never contain a plain space here).
      const k = x.indexOf(" ");
      if (k > 0) return [x.slice(0, k), x.slice(k + 1)];
    }
    throw new XverseError("bad_tokenizer", `BPE merge ${i} is ${JSON.stringify(x)}; expected ["a", "b"] or "a b"`);
  });
  const bpe = new BpeModel({
    vocab,
    merges,
    unkToken: m.unk_token ?? null,
    fuseUnk: m.fuse_unk === true,
    byteFallback: m.byte_fallback === true,
    ignoreMerges: m.ignore_merges === true,
    continuingSubwordPrefix: m.continuing_subword_prefix ?? null,
    endOfWordSuffix: m.end_of_word_suffix ?? null,
  });
  return {
    tokenize: (w) => bpe.tokenize(w),
    idToToken: (id) => bpe.vocabR[id],
    tokenToId: (t) => bpe.vocab.get(t),
    vocabSize: bpe.vocabSize,
  };
}
