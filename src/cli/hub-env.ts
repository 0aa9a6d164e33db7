/**
 * The hub settings a user gives through the environment, read the way huggingface_hub reads them so both tools
 * share one cache and one login:
 *   HF_HUB_CACHE (or the older HUGGINGFACE_HUB_CACHE), else $HF_HOME/hub; HF_HOME defaults to
 *   $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface
 *   HF_ENDPOINT (a mirror), HF_TOKEN, else the token file HF_TOKEN_PATH or $HF_HOME/token (huggingface-cli login)
 *   MODELSCOPE_DOMAIN for ModelScope's endpoint
 * Also: `--model REPO[@REV][:TAG]` resolution for every command, pulling only when asked (--pull).
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { XverseError } from "../errors.js";
import { findSnapshot, formatRepoRef, ggufModelsIn, isExistingPath, modelInSnapshot, parseRepoRef, pickGguf, suggestTag, type RepoRef } from "../hub/resolve.js";
import { fmtBytes, listRepo, pull, type PullProgress, type PullResult } from "../hub/pull.js";
import { HfHub } from "../hub/hf.js";
import { ModelScope } from "../hub/modelscope.js";
import type { HubSource } from "../hub/types.js";

export type SourceName = "hf" | "modelscope";

export interface HubEnv {
  cacheDir: string;
  hfEndpoint?: string;
  token?: string;
  modelscopeEndpoint?: string;
}

export function hubEnv(env: NodeJS.ProcessEnv = process.env): HubEnv {
  const hfHome = env.HF_HOME || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "huggingface");
  const cacheDir = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome, "hub");
  let token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined;
  if (!token) {
    try { token = readFileSync(env.HF_TOKEN_PATH || join(hfHome, "token"), "utf8").trim() || undefined; } catch { /* not logged in */ }
  }
  return { cacheDir, hfEndpoint: env.HF_ENDPOINT || undefined, token, modelscopeEndpoint: env.MODELSCOPE_DOMAIN || undefined };
}

export function parseSource(v: unknown): SourceName {
  if (v === undefined || v === "hf" || v === "huggingface") return "hf";
  if (v === "modelscope" || v === "ms") return "modelscope";
  throw new XverseError("bad_flag", `--source must be hf or modelscope, got "${String(v)}"`);
}

export function sourceFor(name: SourceName, e: HubEnv): HubSource {
  return name === "modelscope" ? new ModelScope({ endpoint: e.modelscopeEndpoint }) : new HfHub({ endpoint: e.hfEndpoint, token: e.token });
}

/**
 * One progress line on a terminal (bytes, rate, ETA, files), redrawn at most every 200 ms; on pipes and logs
 * nothing (the pull prints one line per file instead).
 */
export function pullProgress(label: string, stream: NodeJS.WriteStream = process.stderr): ((p: PullProgress) => void) | undefined {
  if (stream.isTTY !== true) return undefined;
  const t0 = Date.now();
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last < 200 && p.filesDone < p.files) return;
    last = now;
    const secs = Math.max((now - t0) / 1000, 1e-3), rate = p.transferred / secs;
    const eta = rate > 0 ? (p.total - p.done) / rate : NaN;
    const pct = p.total > 0 ? Math.floor((100 * p.done) / p.total) : 100;
    stream.write(`\r\x1b[K${label} ${fmtBytes(p.done)}/${fmtBytes(p.total)} ${pct} % ${fmtBytes(rate)}/s ` +
      `ETA ${Number.isFinite(eta) ? fmtDuration(eta) : "--"} · ${p.filesDone}/${p.files} files`);
    if (p.filesDone === p.files) stream.write("\n");
  };
}

export function fmtDuration(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Ctrl-C during a pull: stop the downloads (partials stay), and let the command print how to resume. */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const ac = new AbortController();
  const onInt = () => ac.abort();
  process.once("SIGINT", onInt);
  return { signal: ac.signal, dispose: () => process.removeListener("SIGINT", onInt) };
}

/** Runs a pull with the terminal's progress line and Ctrl-C handling. */
export async function pullWithUi(repo: string, o: { source: SourceName; revision?: string; include?: string[]; exclude?: string[]; jobs?: number; env?: HubEnv; quiet?: boolean }): Promise<PullResult> {
  const e = o.env ?? hubEnv();
  const src = sourceFor(o.source, e);
  const progress = o.quiet ? undefined : pullProgress(`pull ${repo}`);
  const log = (m: string) => { if (!o.quiet) process.stderr.write(`${progress ? "\r\x1b[K" : ""}${m}\n`); };
  const { signal, dispose } = interruptSignal();
  try {
    return await pull(repo, { cacheDir: e.cacheDir, source: src, revision: o.revision, include: o.include, exclude: o.exclude, jobs: o.jobs, signal, onProgress: progress, onEvent: log });
  } finally {
    dispose();
  }
}

/**
 * What --pull downloads for ref: the whole repository when it is a checkpoint (config.json at the top), else the one
 * GGUF model the TAG names (with its other parts and the small config files) — a GGUF repository holds a dozen
 * quantizations of tens of GB each, so without a TAG that picks one it is an error before anything is fetched.
 */
async function pullSelection(model: string, ref: RepoRef, source: HubSource): Promise<string[] | undefined> {
  const { listing } = await listRepo(ref.repo, { source, revision: ref.revision });
  const paths = listing.files.map((f) => f.path);
  const models = ggufModelsIn(paths);
  if (paths.includes("config.json") && !ref.tag) return undefined;
  const pick = pickGguf(models, ref.tag);
  if (pick.length === 1) {
    const one = paths.includes(pick[0]) ? pick[0] : `${pick[0]}.aa`; // a byte-split set is named by its stem
    return [one.replace(/[[*?]/g, "[$&]"), "*.json"];
  }
  const list = models.map((g) => `  ${g}`).join("\n");
  if (models.length === 0) throw new XverseError("not_found", `--model ${model}: ${ref.repo} has neither config.json nor a .gguf file on ${source.label}`);
  if (pick.length === 0) throw new XverseError("not_found", `--model ${model}: no GGUF file of ${ref.repo} has "${ref.tag}" in its name; it has:\n${list}`);
  throw new XverseError("ambiguous_model", `--model ${model}: ${ref.repo} holds ${pick.length} GGUF models; pick one with ${ref.repo}:TAG, e.g. ${ref.repo}:${suggestTag(pick[0])} (nothing was downloaded):\n${pick.map((g) => `  ${g}`).join("\n")}`);
}

/**
 * --model as given → the path to load. A path on disk is returned as is; org/name[@rev][:tag] comes from the
 * cache, pulled first only with --pull (never silently). Undefined stays undefined (the embedded model).
 */
export async function resolveModelArg(model: string | undefined, o: { pull?: boolean; source?: SourceName; env?: HubEnv } = {}): Promise<string | undefined> {
  if (model === undefined || isExistingPath(model)) return model;
  const ref = parseRepoRef(model);
  if (!ref) return model; // not a repository id: the loader says the path does not exist
  const e = o.env ?? hubEnv();
  const sourceName = o.source ?? "hf";
  const source = sourceFor(sourceName, e);
  const defaultRevision = source.defaultRevision;
  // no revision given: the other source's default branch too (a ModelScope pull writes refs/master)
  let snap = findSnapshot(e.cacheDir, ref, defaultRevision) ?? (ref.revision ? null : findSnapshot(e.cacheDir, ref, defaultRevision === "main" ? "master" : "main"));
  if (snap) {
    try {
      return modelInSnapshot(snap, ref);
    } catch (err) {
      // cached, but not the GGUF the TAG names: --pull fetches it, otherwise the error says how
      if (!o.pull || !(err instanceof XverseError) || err.code !== "not_found") throw err;
    }
  } else if (!o.pull) {
    throw new XverseError("not_found",
      `--model ${model}: not a path on disk, and ${formatRepoRef({ ...ref, tag: undefined })} is not in the model cache (${e.cacheDir}); ` +
      `download it with \`xverse pull ${formatRepoRef({ ...ref, tag: undefined })}${sourceName === "modelscope" ? " --source modelscope" : ""}\`, or add --pull to this command`);
  }
  await pullWithUi(ref.repo, { source: sourceName, revision: ref.revision, include: await pullSelection(model, ref, source), env: e });
  snap = findSnapshot(e.cacheDir, ref, ref.revision ?? defaultRevision);
  if (!snap) throw new XverseError("not_found", `--model ${model}: the pull finished but left no snapshot for ${formatRepoRef({ ...ref, tag: undefined })}`);
  return modelInSnapshot(snap, ref);
}
