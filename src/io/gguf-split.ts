/**
 * Split GGUF models (llama.cpp's gguf-split, used for files over Hugging Face's 50 GB limit, e.g. a 65B q8_0):
 * NAME-00001-of-0000N.gguf … each a complete GGUF holding some tensors, with metadata
 * split.no (0-based), split.count and, in the first, split.tensors.count. The first part carries the model
 * metadata. Any part's path finds all of them. (Not to be confused with byte-split files, x.gguf.aa/.ab: those are
 * one GGUF cut into pieces, joined by io/mapped-file.ts.)
 */
import { existsSync } from "node:fs";
import { XverseError } from "../errors.js";
import { readGguf, type GgufFile } from "./gguf.js";
import type { OpenBytesOptions } from "./mapped-file.js";

const SPLIT_NAME = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;

/** The parts of the model at `path`: [file] when it is not split, else every part in order (first part first). */
export function readGgufParts(path: string, opts?: OpenBytesOptions): GgufFile[] {
  const first = readGguf(path, opts);
  const count = first.metadata["split.count"];
  if (count === undefined || count === 1 || count === 0) return [first];
  if (typeof count !== "number" || !Number.isInteger(count) || count < 1) {
    throw new XverseError("bad_gguf", `${path}: split.count must be a positive integer, got ${String(count)}`);
  }
  const m = SPLIT_NAME.exec(path);
  if (!m || Number(m[3]) !== count) {
    throw new XverseError("bad_gguf", `${path} is part of a ${count}-part split model, but its name is not PREFIX-0000K-of-${String(count).padStart(5, "0")}.gguf, so the other parts cannot be found; keep the names gguf-split gave them`);
  }
  const parts: GgufFile[] = [];
  for (let i = 0; i < count; i++) {
    const p = `${m[1]}-${String(i + 1).padStart(5, "0")}-of-${m[3]}.gguf`;
    if (!existsSync(p)) throw new XverseError("not_found", `split model part ${i + 1} of ${count} is missing: ${p}`);
    const f = p === path ? first : readGguf(p, opts);
    if (f.metadata["split.no"] !== i || f.metadata["split.count"] !== count) {
      throw new XverseError("bad_gguf", `${p}: split.no ${String(f.metadata["split.no"])} / split.count ${String(f.metadata["split.count"])}, expected ${i} / ${count} — parts of different models mixed?`);
    }
    parts.push(f);
  }
  const total = parts.reduce((n, f) => n + f.tensors.length, 0);
  const want = parts[0].metadata["split.tensors.count"];
  if (typeof want === "number" && want !== total) {
    throw new XverseError("bad_gguf", `${parts[0].path}: split.tensors.count is ${want} but the ${count} parts hold ${total} tensors`);
  }
  return parts;
}
