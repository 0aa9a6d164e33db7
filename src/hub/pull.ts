/**
 * pull(): one revision of a repository into the cache — list, select, check the disk, download a few files at a
 * time, link the snapshot, write refs/<revision>. A second pull of the same revision transfers nothing (the blobs are
 * there; only the listing is fetched). Errors stop the other downloads and keep their partials for the next run.
 */
import { mkdirSync, statfsSync } from "node:fs";
import { join } from "node:path";
import { XverseError } from "../errors.js";
import { RepoCache } from "./cache.js";
import { downloadFile, isCached, partialBytes, type DownloadOptions } from "./download.js";
import type { RetryOptions } from "./http.js";
import { selectFiles } from "./select.js";
import type { HubSource, Listing, RemoteFile } from "./types.js";

export interface PullProgress {
  /** Bytes of the selected files present (cached + downloaded so far) and in all. */
  done: number;
  total: number;
  filesDone: number;
  files: number;
  /** Bytes fetched over the network in this pull so far (the rate's numerator). */
  transferred: number;
}

export interface PullOptions {
  cacheDir: string;
  source: HubSource;
  /** Default: the source's default branch (main / master). */
  revision?: string;
  include?: string[];
  exclude?: string[];
  /** Files downloaded at once (default 4). */
  jobs?: number;
  signal?: AbortSignal;
  /** Download retries (default: the source's settings, else 5 tries more, 0.5 s doubling). */
  retry?: RetryOptions;
  onProgress?: (p: PullProgress) => void;
  /** One line per event worth a log line (file done, resumed, retry). */
  onEvent?: (message: string) => void;
  fetch?: typeof fetch;
  /** A connection silent this long is dropped and resumed (default 60 s). */
  idleTimeoutMs?: number;
  /** Test seams: a failing write (disk full) and the free space on the cache's disk. */
  writeSync?: DownloadOptions["writeSync"];
  freeBytes?: (dir: string) => number | undefined;
}

export interface PullResult {
  listing: Listing;
  selected: RemoteFile[];
  snapshotDir: string;
  /** Bytes fetched over the network, and of them how many files were fetched at all. */
  transferred: number;
  downloadedFiles: number;
  cachedFiles: number;
}

export function fmtBytes(n: number): string {
  const u = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(n >= 100 ? 0 : 1)} ${u[i]}`;
}

export function defaultFreeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined; // not supported here: the write itself will report a full disk
  }
}

/** The listing and the files --include / --exclude select (what `xverse pull --list` shows). */
export async function listRepo(repo: string, o: Pick<PullOptions, "source" | "revision" | "include" | "exclude" | "signal">): Promise<{ listing: Listing; selected: RemoteFile[] }> {
  let listing: Listing;
  try {
    listing = await o.source.list(repo, o.revision ?? o.source.defaultRevision, o.signal);
  } catch (e) {
    if (o.signal?.aborted && !(e instanceof XverseError)) throw new XverseError("interrupted", `interrupted while fetching the file list of ${repo}; nothing was downloaded`);
    throw e;
  }
  return { listing, selected: selectFiles(listing.files, o.include, o.exclude) };
}

export async function pull(repo: string, o: PullOptions): Promise<PullResult> {
  const cache = new RepoCache(o.cacheDir, repo);
  const { listing, selected } = await listRepo(repo, o);
  if (selected.length === 0) {
    throw new XverseError("not_found", `${repo}@${listing.revision} has ${listing.files.length} files and none matches --include / --exclude; see them with xverse pull --list ${repo}`);
  }
  const snapshotDir = cache.snapshotDir(listing.commit);
  for (const f of selected) cache.blobPath(f.etag); // names checked before anything is written

  // one download per blob: two paths with the same content (same ETag) must not write one partial at once
  const cached = new Set(selected.filter((f) => isCached(cache, f)));
  const seen = new Set<string>();
  const todo = selected.filter((f) => !cached.has(f) && !seen.has(f.etag) && (seen.add(f.etag), true));
  const cachedFiles = cached.size;
  const total = selected.reduce((n, f) => n + f.size, 0);
  const need = todo.reduce((n, f) => n + f.size - partialBytes(cache, f), 0);
  let done = total - need;
  let transferred = 0, filesDone = selected.length - todo.length;
  const report = () => o.onProgress?.({ done, total, filesDone, files: selected.length, transferred });

  mkdirSync(join(cache.dir, "blobs"), { recursive: true });
  const free = (o.freeBytes ?? defaultFreeBytes)(join(cache.dir, "blobs"));
  if (free !== undefined && need > free) {
    throw new XverseError("disk_full",
      `not enough disk space in ${join(cache.dir, "blobs")}: this pull needs ${fmtBytes(need)} more (${todo.length} files), ${fmtBytes(free)} is free; ` +
      `free some space, narrow it with --include, or point HF_HUB_CACHE at a bigger disk`);
  }

  // one failure stops the rest (their partials stay); Ctrl-C arrives through o.signal
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  o.signal?.addEventListener("abort", onAbort, { once: true });
  let firstError: unknown = null;
  let downloadedFiles = 0;
  report();
  const queue = [...todo];
  const worker = async () => {
    for (let f = queue.shift(); f && !stop.signal.aborted; f = queue.shift()) {
      try {
        const r = await downloadFile(cache, o.source, listing, f, {
          signal: stop.signal, retry: { ...(o.retry ?? o.source.retry), onRetry: (m, w) => o.onEvent?.(`${m}; retrying in ${(w / 1000).toFixed(1)} s`) },
          fetch: o.fetch, writeSync: o.writeSync, idleTimeoutMs: o.idleTimeoutMs,
          onWait: (pid) => o.onEvent?.(`${f.path}: process ${pid} is downloading it; waiting for it to finish`), ctx: o.source.ctx(repo, listing.revision, f.path),
          onBytes: (d) => { done += d; if (d > 0) transferred += d; report(); },
        });
        if (r.resumedFrom > 0) o.onEvent?.(`${f.path}: resumed at byte ${r.resumedFrom} of ${f.size}`);
        if (!r.cached) o.onEvent?.(`${f.path}: ${fmtBytes(f.size)} verified (${f.sha256 ? "sha256" : f.gitSha1 ? "git sha1" : "size"})`);
        filesDone++;
        if (!r.cached) downloadedFiles++;
        report();
      } catch (e) {
        if (firstError === null) firstError = e;
        stop.abort();
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(o.jobs ?? 4, todo.length)) }, worker));
  } finally {
    o.signal?.removeEventListener("abort", onAbort);
  }
  if (o.signal?.aborted) {
    const kept = todo.reduce((n, f) => n + partialBytes(cache, f), 0);
    throw new XverseError("interrupted",
      `interrupted: ${fmtBytes(done)} of ${fmtBytes(total)} in the cache, ${fmtBytes(kept)} of it in resumable partials (${join(cache.dir, "blobs")}/*.incomplete) — ` +
      `run the same command again to resume`);
  }
  if (firstError !== null) {
    const e = firstError as XverseError;
    if (e instanceof XverseError && e.code === "disk_full") {
      const left = todo.reduce((n, f) => n + (isCached(cache, f) ? 0 : f.size - partialBytes(cache, f)), 0);
      throw new XverseError("disk_full", `${e.message} (the whole pull still needs ${fmtBytes(left)})`, { cause: e });
    }
    throw firstError;
  }

  for (const f of selected) cache.linkSnapshot(listing.commit, f.path, f.etag);
  cache.writeRef(listing.revision, listing.commit);
  return { listing, selected, snapshotDir, transferred, downloadedFiles, cachedFiles };
}
