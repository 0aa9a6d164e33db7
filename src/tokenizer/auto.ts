/**
 * Opens a tokenizer from whatever a user points at: a model directory (tokenizer.json), a tokenizer.json file,
 * a Hugging Face cache folder, or a .gguf file (its tokenizer.ggml.* metadata).
 */
import { existsSync, statSync } from "node:fs";
import { XverseError } from "../errors.js";
import { resolveModelDir } from "../io/checkpoint.js";
import { readGguf } from "../io/gguf.js";
import { isGgufPath, modelFileExists } from "../io/mapped-file.js";
import { tokenizerFromGguf } from "./gguf-vocab.js";
import { loadTokenizer } from "./load.js";
import type { Tokenizer } from "./types.js";

export function openTokenizer(path: string): Tokenizer {
  if (!modelFileExists(path)) {
    throw new XverseError("not_found", `${path} does not exist; give a model directory, a tokenizer.json or a .gguf file`);
  }
  // a missing path that still exists as a model file is the stem of byte-split parts (x.gguf.aa …)
  if (isGgufPath(path) && (!existsSync(path) || statSync(path).isFile())) {
    try {
      return tokenizerFromGguf(readGguf(path).metadata);
    } catch (e) {
      if (e instanceof XverseError) throw new XverseError(e.code, `${path}: ${e.message}`);
      throw e;
    }
  }
  // A Hugging Face cache folder (models--org--name) stands for its snapshot.
  return loadTokenizer(statSync(path).isDirectory() ? resolveModelDir(path) : path);
}
