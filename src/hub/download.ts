/**
 * One file into the cache: streamed to blobs/<etag>.incomplete, resumed with `Range: bytes=<have>-` after a cut
 * connection or a restart, retried with backoff, verified (SHA-256, or the git blob SHA-1 and the size), then
 * fsynced and renamed to blobs/<etag>. A failed checksum deletes the partial; any other failure or Ctrl-C keeps it,
 * so the next pull continues from its last byte. Nothing ever appears under a final name unverified.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { createHash, type Hash } from "node:crypto";
import { dirname } from "node:path";
import { XverseError } from "../errors.js";
import type { RepoCache } from "./cache.js";
import { describeNetworkError, fetchFollow, RetryableError, withRetry, type RequestContext, type RetryOptions } from "./http.js";
import type { HubSource, Listing, RemoteFile } from "./types.js";
import { withFileLock } from "./lock.js";

export interface DownloadOptions {
  signal?: AbortSignal;
  retry?: RetryOptions;
  /** Bytes received (negative when a server ignored Range and the file restarts from 0). */
  onBytes?: (delta: number) => void;
  fetch?: typeof fetch;
  /** fs.writeSync by default; tests inject a failing one (disk full). */
  writeSync?: (fd: number, buf: Uint8Array, offset: number, length: number, position: number) => number;
  /** A connection that sends nothing for this long is dropped and resumed (default 60 s). */
  idleTimeoutMs?: number;
  /** Another process holds this blob's download lock; called once, then it is waited for. */
  onWait?: (holderPid: number) => void;
  /** Context for messages (set by the source). */
  ctx: RequestContext;
}

export interface DownloadResult {
  /** Bytes fetched over the network by this call. */
  transferred: number;
  /** Bytes that were already in the partial when it started. */
  resumedFrom: number;
  /** The blob was in the cache already. */
  cached: boolean;
}

const ENOSPC = new Set(["ENOSPC", "EDQUOT", "EFBIG"]);

/** Bytes already in the partial of `file` (0 when none). */
export function partialBytes(cache: RepoCache, file: RemoteFile): number {
  try { return statSync(cache.incompletePath(file.etag)).size; } catch { return 0; }
}

export function isCached(cache: RepoCache, file: RemoteFile): boolean {
  try { return statSync(cache.blobPath(file.etag)).size === file.size; } catch { return false; }
}

export async function downloadFile(cache: RepoCache, source: HubSource, listing: Listing, file: RemoteFile, o: DownloadOptions): Promise<DownloadResult> {
  if (isCached(cache, file)) return { transferred: 0, resumedFrom: 0, cached: true };
  return withFileLock(cache.lockPath(file.etag), { signal: o.signal, onWait: o.onWait }, async () => {
    // the process we waited for may have finished it
    if (isCached(cache, file)) return { transferred: 0, resumedFrom: 0, cached: true };
    return downloadLocked(cache, source, listing, file, o);
  });
}

async function downloadLocked(cache: RepoCache, source: HubSource, listing: Listing, file: RemoteFile, o: DownloadOptions): Promise<DownloadResult> {
  const blob = cache.blobPath(file.etag);
  const inc = cache.incompletePath(file.etag);
  mkdirSync(dirname(inc), { recursive: true });
  const fd = openSync(inc, existsSync(inc) ? "r+" : "w+");
  const write = o.writeSync ?? writeSync;
  let have = fstatSync(fd).size;
  let transferred = 0;
  let hash: Hash;
  const where = `${listing.repo}/${file.path}`;
  let ok = false;
  try {
    if (have > file.size) { ftruncateSync(fd, 0); have = 0; } // not a prefix of this file
    hash = newHash(file);
    if (have > 0) hashPrefix(fd, have, hash);
    const resumedFrom = have;

    const idleMs = o.idleTimeoutMs ?? 60_000;
    // one request; a connection that delivers nothing for idleMs is dropped and retried from the byte reached
    const attempt = async () => {
      const ac = new AbortController();
      const onUser = () => ac.abort();
      o.signal?.addEventListener("abort", onUser, { once: true });
      let idle: NodeJS.Timeout | undefined, stalled = false;
      const arm = () => { clearTimeout(idle); idle = setTimeout(() => { stalled = true; ac.abort(); }, idleMs); };
      arm();
      try {
        await request(ac.signal, arm);
      } catch (e) {
        if (stalled && !o.signal?.aborted && !(e instanceof XverseError)) {
          throw new RetryableError(`${where}: no data for ${idleMs / 1000} s at byte ${have} of ${file.size}`);
        }
        throw e;
      } finally {
        clearTimeout(idle);
        o.signal?.removeEventListener("abort", onUser);
      }
    };
    const request = async (signal: AbortSignal, alive: () => void) => {
      if (have === file.size) return;
      const req = source.fileRequest(listing, file);
      // identity: a compressed response would make sizes and Range offsets count other bytes (fetch decompresses)
      const headers: Record<string, string> = { ...req.headers, "accept-encoding": "identity", ...(have > 0 ? { range: `bytes=${have}-` } : {}) };
      const { res, first } = await fetchFollow(req.url, headers, signal, o.ctx, o.fetch);
      source.checkHeaders?.(listing, file, first);
      if (res.status === 416) {
        // the range starts at or past the end: the partial is not a prefix of what is served now
        await res.body?.cancel().catch(() => {});
        restart();
        throw new RetryableError(`${where}: the server refused the range bytes=${have}-; starting the file over`);
      }
      if (have > 0) {
        const start = res.status === 206 ? /^bytes (\d+)-/.exec(res.headers.get("content-range") ?? "")?.[1] : undefined;
        if (start === undefined || Number(start) !== have) restart(); // 200: Range ignored, the whole file follows
      }
      if (!res.body) throw new RetryableError(`${where}: empty response`);
      let gotSome = false;
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          if (have + chunk.length > file.size) {
            throw new XverseError("checksum", `${where}: the server sent more than the ${file.size} bytes listed; the download was discarded — run the pull again`);
          }
          alive();
          writeAll(fd, chunk, have);
          hash.update(chunk);
          have += chunk.length;
          transferred += chunk.length;
          gotSome = true;
          o.onBytes?.(chunk.length);
        }
      } catch (e) {
        if (e instanceof XverseError || signal.aborted) throw e;
        throw new RetryableError(`${where}: connection lost at byte ${have} of ${file.size} (${describeNetworkError(e)})`);
      }
      if (have < file.size) {
        throw new RetryableError(`${where}: the connection closed at byte ${have} of ${file.size}${gotSome ? "" : " with no data"}`);
      }
    };
    await withRetry(attempt, { ...o.retry, signal: o.signal, progress: () => transferred });

    const digest = hash.digest("hex");
    const want = file.sha256 ?? file.gitSha1;
    if (have !== file.size || (want && digest !== want)) {
      closeSync(fd);
      try { unlinkSync(inc); } catch { /* already gone */ }
      ok = true; // closed here
      throw new XverseError("checksum",
        `${where}: checksum mismatch — expected ${file.sha256 ? "sha256" : "git sha1"} ${want}, got ${digest} (${have} of ${file.size} bytes); ` +
        `the download was discarded, nothing was kept — run the pull again (if it repeats, the server or a proxy is corrupting the file)`);
    }
    fsyncSync(fd);
    closeSync(fd);
    ok = true;
    renameSync(inc, blob);
    return { transferred, resumedFrom, cached: false };
  } catch (e) {
    if (o.signal?.aborted && !(e instanceof XverseError)) {
      throw new XverseError("interrupted", `${where}: interrupted at byte ${have} of ${file.size}; the partial is kept — run the same pull again to resume`);
    }
    throw e;
  } finally {
    if (!ok) { try { fsyncSync(fd); } catch { /* keep the first error */ } try { closeSync(fd); } catch { /* same */ } }
  }

  function restart(): void {
    o.onBytes?.(-have);
    ftruncateSync(fd, 0);
    have = 0;
    hash = newHash(file);
  }

  function writeAll(fdw: number, chunk: Uint8Array, pos: number): void {
    let done = 0;
    try {
      while (done < chunk.length) done += write(fdw, chunk, done, chunk.length - done, pos + done);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? "";
      if (ENOSPC.has(code)) {
        throw new XverseError("disk_full",
          `disk full while writing ${where} into ${dirname(inc)} (${code}): ${file.size - pos - done} more bytes are needed for this file; ` +
          `free space (or point HF_HUB_CACHE at a bigger disk) and run the same pull again — the ${pos + done} bytes downloaded so far are kept`, { cause: e });
      }
      throw new XverseError("write_failed", `cannot write ${inc}: ${(e as Error).message}`, { cause: e });
    }
  }
}

function newHash(file: RemoteFile): Hash {
  if (file.sha256) return createHash("sha256");
  const h = createHash("sha1");
  if (file.gitSha1) h.update(`blob ${file.size}\0`); // git's blob object header; the content follows
  return h;
}

/** Feeds the first `n` bytes of the partial into the hash (resuming needs the digest of what is already there). */
function hashPrefix(fd: number, n: number, hash: Hash): void {
  const buf = Buffer.allocUnsafe(Math.min(n, 16 << 20));
  for (let pos = 0; pos < n;) {
    const got = readSync(fd, buf, 0, Math.min(buf.length, n - pos), pos);
    if (got === 0) break;
    hash.update(buf.subarray(0, got));
    pos += got;
  }
}
