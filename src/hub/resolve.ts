/**
 * `--model org/name[@revision][:TAG]` → a path loadModel takes, from the cache alone (no network): the snapshot
 * folder of a checkpoint repository, or the one GGUF in it (TAG, e.g. q4_k_m, picks among several, as llama.cpp's
 * `-hf repo:Q4_K_M` does). A path that exists on disk always wins over a repository id of the same spelling.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { XverseError } from "../errors.js";
import { RepoCache } from "./cache.js";

export interface RepoRef {
  repo: string;
  revision?: string;
  /** Picks a GGUF file by a case-insensitive part of its name. */
  tag?: string;
}

/** org/name[@rev][:tag] → RepoRef; null when `s` is not spelled like a repository id (a path, a file name). */
export function parseRepoRef(s: string): RepoRef | null {
  const m = /^([A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*)(?:@([\w.\/-]+))?(?::([\w.-]+))?$/.exec(s);
  if (!m || s.includes("..") || /\.(gguf|json|safetensors|bin)$/i.test(m[1])) return null;
  return { repo: m[1], revision: m[2], tag: m[3] };
}

export function formatRepoRef(r: RepoRef): string {
  return `${r.repo}${r.revision ? `@${r.revision}` : ""}${r.tag ? `:${r.tag}` : ""}`;
}

/** The snapshot folder for ref in the cache, or null when that revision was never pulled. */
export function findSnapshot(cacheDir: string, ref: RepoRef, defaultRevision: string): string | null {
  const cache = new RepoCache(cacheDir, ref.repo);
  const commit = cache.readRef(ref.revision ?? defaultRevision);
  if (!commit) return null;
  const dir = cache.snapshotDir(commit);
  return existsSync(dir) ? dir : null;
}

function walk(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(join(dir, e.name), rel));
    else out.push(rel);
  }
  return out;
}

/** The GGUF models in a snapshot, one entry per model: split sets by their first part, byte-split sets by the stem. */
export function ggufModels(snapshot: string): string[] {
  return ggufModelsIn(walk(snapshot));
}

/** The same from a list of repository paths (a listing, before anything is downloaded). */
export function ggufModelsIn(paths: string[]): string[] {
  const models = new Set<string>();
  for (const f of paths) {
    if (/mmproj/i.test(f)) continue; // vision projectors ride along in some repos; they are not a language model
    let m;
    if ((m = /^(.*\.gguf)\.aa$/.exec(f))) models.add(m[1]);
    else if ((m = /^(.*)-00001-of-(\d{5})\.gguf$/.exec(f))) models.add(f);
    else if (/\.gguf$/.test(f) && !/-\d{5}-of-\d{5}\.gguf$/.test(f)) models.add(f);
  }
  return [...models].sort();
}

/**
 * The path to load for ref from a snapshot: the folder itself when it holds config.json (a checkpoint; a TAG is
 * then an error), else its one GGUF model, or the one whose name contains TAG.
 */
export function modelInSnapshot(snapshot: string, ref: RepoRef): string {
  const name = formatRepoRef(ref);
  const ggufs = ggufModels(snapshot);
  if (existsSync(join(snapshot, "config.json")) && !ref.tag) return snapshot;
  const pick = pickGguf(ggufs, ref.tag);
  if (pick.length === 1) return join(snapshot, ...pick[0].split("/"));
  if (ggufs.length === 0) {
    throw new XverseError("not_found", `${name}: the cached snapshot ${snapshot} holds neither config.json nor a .gguf file; pull the model files (xverse pull ${ref.repo} without --include, or with --include matching them)`);
  }
  const list = ggufs.map((g) => `  ${g}`).join("\n");
  if (pick.length === 0) {
    throw new XverseError("not_found", `${name}: no cached GGUF file's name contains "${ref.tag}"; the snapshot has:\n${list}\npull the one you want with xverse pull ${ref.repo} --include "*${ref.tag}*"`);
  }
  throw new XverseError("ambiguous_model", `${name}: the snapshot has ${pick.length} GGUF models; pick one with ${ref.repo}:TAG, e.g. ${ref.repo}:${suggestTag(pick[0])}:\n${pick.map((g) => `  ${g}`).join("\n")}`);
}

/** The GGUF models whose name contains tag (case-insensitive); all of them without a tag. */
export function pickGguf(models: string[], tag: string | undefined): string[] {
  return tag ? models.filter((g) => g.toLowerCase().includes(tag.toLowerCase())) : models;
}

/** The quantization part of a GGUF name (XVERSE-7B-Chat-Q4_K_M.gguf → Q4_K_M), for the hint. */
export function suggestTag(file: string): string {
  const m = /[-._]((?:I?Q\d[\w]*|F16|F32|BF16))(?:-\d{5}-of-\d{5})?\.gguf/i.exec(file);
  return m ? m[1] : "q4_k_m";
}

/** Whether `s` names something on disk (then it is a path, never a repository id). */
export function isExistingPath(s: string): boolean {
  try { statSync(s); return true; } catch { return false; }
}
