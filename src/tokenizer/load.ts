/**
 * Loading a Hugging Face tokenizer: a directory with tokenizer.json (+ tokenizer_config.json /
 * special_tokens_map.json for bos / eos / pad), or a tokenizer.json path.
 */
import { existsSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { readJsonFile } from "../config.js";
import { XverseError } from "../errors.js";
import { tokenizerFromJson, type TokenizerConfig } from "./from-json.js";
import type { Tokenizer } from "./types.js";

export { tokenizerFromJson, type TokenizerConfig } from "./from-json.js";

type Json = Record<string, any>;

export function loadTokenizer(pathOrDir: string): Tokenizer {
  if (!existsSync(pathOrDir)) {
    throw new XverseError("not_found", `tokenizer path ${pathOrDir} does not exist; pass a model directory or a tokenizer.json file`);
  }
  const isDir = statSync(pathOrDir).isDirectory();
  const dir = isDir ? pathOrDir : dirname(pathOrDir);
  const file = isDir ? join(pathOrDir, "tokenizer.json") : pathOrDir;
  if (!existsSync(file)) {
    throw new XverseError("not_found", `no tokenizer.json in ${pathOrDir}; only Hugging Face fast tokenizers (tokenizer.json) are supported`);
  }
  const json = readJsonFile(file);
  // The side files apply when they sit next to the tokenizer.json they describe.
  const config: TokenizerConfig = {};
  if (isDir || basename(file) === "tokenizer.json") {
    for (const name of ["special_tokens_map.json", "tokenizer_config.json"]) {
      const p = join(dir, name);
      if (!existsSync(p)) continue;
      const j = readJsonFile(p) as Json;
      for (const k of ["bos_token", "eos_token", "pad_token"] as const) if (j[k] !== undefined) config[k] = j[k];
    }
  }
  try {
    return tokenizerFromJson(json, config);
  } catch (e) {
    if (e instanceof XverseError) throw new XverseError(e.code, `${file}: ${e.message}`);
    throw e;
  }
}
