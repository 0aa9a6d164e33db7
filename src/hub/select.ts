/**
 * Which files of a listing a pull takes: --include / --exclude globs (fnmatch rules, as huggingface_hub's
 * allow_patterns: `*` also crosses "/", a pattern ending in "/" means everything under it), then whole sets:
 * a file that belongs to a set brings the rest of it, because one part alone does not load —
 *   byte-split GGUF parts      x.gguf.aa, x.gguf.ab, …            (one GGUF cut into pieces)
 *   gguf-split parts           x-00001-of-00003.gguf, …
 *   sharded checkpoints        model-00001-of-00002.safetensors, … + model.safetensors.index.json
 *                              (the same for pytorch_model-…bin + pytorch_model.bin.index.json)
 */
import type { RemoteFile } from "./types.js";

export function globToRegExp(pattern: string): RegExp {
  if (pattern.endsWith("/")) pattern += "*";
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "*") re += ".*";
    else if (c === "?") re += ".";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) { re += "\\["; continue; }
      let body = pattern.slice(i + 1, end);
      if (body.startsWith("!")) body = "^" + body.slice(1);
      re += `[${body.replace(/\\/g, "\\\\")}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The set a file belongs to (files of one set share the key), or null. */
export function setKey(path: string): string | null {
  let m = /^(.*\.gguf)\.[a-z]{2}$/.exec(path);
  if (m) return `bytesplit:${m[1]}`;
  m = /^(.*)-\d{5}-of-(\d{5})\.gguf$/.exec(path);
  if (m) return `ggufsplit:${m[1]}:${m[2]}`;
  m = /^(.*)-\d{5}-of-\d{5}\.(safetensors|bin)$/.exec(path);
  if (m) return `shards:${m[1]}.${m[2]}`;
  m = /^(.*\.(?:safetensors|bin))\.index\.json$/.exec(path);
  if (m) return `shards:${m[1]}`;
  return null;
}

export function selectFiles(files: RemoteFile[], include: string[] = [], exclude: string[] = []): RemoteFile[] {
  const inc = include.map(globToRegExp), exc = exclude.map(globToRegExp);
  const picked = files.filter((f) => (inc.length === 0 || inc.some((r) => r.test(f.path))) && !exc.some((r) => r.test(f.path)));
  const keys = new Set(picked.map((f) => setKey(f.path)).filter((k): k is string => k !== null));
  const chosen = new Set(picked.map((f) => f.path));
  // the rest of each set, unless excluded by name (an explicit --exclude still wins)
  return files.filter((f) => chosen.has(f.path) || (keys.has(setKey(f.path) ?? "") && !exc.some((r) => r.test(f.path))));
}
