/**
 * The download cache in huggingface_hub's own layout, so Python tools and ours share downloads both ways:
 *
 *   <cacheDir>/models--org--name/
 *     blobs/<etag>                 file contents, named by the Hub's ETag (sha256 for LFS files, git blob sha1 else)
 *     blobs/<etag>.incomplete      a download in progress (huggingface_hub resumes the same name)
 *     snapshots/<commit>/<path>    relative symlinks into ../../blobs/<etag> (a copy where links are not allowed)
 *     refs/<revision>              the commit a branch or tag pointed at when it was last pulled (no newline)
 *
 * <cacheDir> is HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (resolved in cli/hub-env.ts).
 */
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, unlinkSync } from "node:fs";
import { basename, dirname, join, relative, sep } from "node:path";
import { XverseError } from "../errors.js";
import { AtomicFile } from "../io/atomic.js";
import { hfCacheRepoDir } from "../io/checkpoint.js";

export { hfCacheRepoDir };

/** org/name (or a bare name, as the Hub still allows) with the characters the Hub allows in ids. */
const REPO_ID = /^(?:[A-Za-z0-9][\w.-]*\/)?[A-Za-z0-9][\w.-]*$/;

export function checkRepoId(repo: string): void {
  if (!REPO_ID.test(repo) || repo.includes("..") || repo.length > 200) {
    throw new XverseError("bad_flag", `"${repo}" is not a repository id; give it as org/name, e.g. xverse/XVERSE-7B-Chat`);
  }
}

/** A path inside a repository, as the listing gave it: relative, "/"-separated, no "..", no absolute parts. */
export function checkRepoPath(repo: string, path: string): void {
  const parts = path.split("/");
  if (path === "" || path.startsWith("/") || path.includes("\\") || parts.some((p) => p === "" || p === "." || p === "..")) {
    throw new XverseError("bad_listing", `${repo}: the server listed a file named ${JSON.stringify(path)}, which is not a safe relative path; refusing to write it`);
  }
}

/** An ETag / commit used as a file name: hex (or the Hub's other word characters), nothing that leaves the folder. */
export function checkName(what: string, name: string): void {
  if (!/^[\w.-]{1,200}$/.test(name) || name.startsWith(".")) {
    throw new XverseError("bad_listing", `the server gave ${what} ${JSON.stringify(name)}, which cannot name a cache file`);
  }
}

export class RepoCache {
  readonly dir: string;
  constructor(readonly cacheDir: string, readonly repo: string) {
    checkRepoId(repo);
    this.dir = hfCacheRepoDir(cacheDir, repo);
  }

  blobPath(etag: string): string {
    checkName("the ETag", etag);
    return join(this.dir, "blobs", etag);
  }

  incompletePath(etag: string): string {
    return this.blobPath(etag) + ".incomplete";
  }

  /** Where a download of this blob holds its cross-process lock (beside huggingface_hub's own .locks). */
  lockPath(etag: string): string {
    checkName("the ETag", etag);
    return join(this.cacheDir, ".locks", basename(this.dir), `${etag}.xverse.lock`);
  }

  snapshotDir(commit: string): string {
    checkName("the commit", commit);
    return join(this.dir, "snapshots", commit);
  }

  /** The commit refs/<revision> names, or null. A 40-hex revision is a commit itself. */
  readRef(revision: string): string | null {
    if (/^[0-9a-f]{40}$/.test(revision)) return revision;
    const p = join(this.dir, "refs", ...revision.split("/"));
    if (!existsSync(p)) return null;
    const commit = readFileSync(p, "utf8").trim();
    return commit === "" ? null : commit;
  }

  /** refs/<revision> → commit, written atomically; nothing for a revision that is the commit itself. */
  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    if (revision.split("/").some((p) => p === "" || p === "." || p === "..")) {
      throw new XverseError("bad_flag", `revision "${revision}" cannot name a file under refs/`);
    }
    const p = join(this.dir, "refs", ...revision.split("/"));
    mkdirSync(dirname(p), { recursive: true });
    const f = new AtomicFile(p);
    try {
      f.write(new TextEncoder().encode(commit));
      f.commit();
    } catch (e) {
      f.abort();
      throw e;
    }
  }

  /**
   * snapshots/<commit>/<path> → ../../blobs/<etag> (relative, as huggingface_hub makes it, so the cache can move).
   * An existing link to the same blob is kept; one to another blob is replaced. Where symlinks are not allowed
   * (Windows without developer mode) the blob is copied, as huggingface_hub does.
   */
  linkSnapshot(commit: string, path: string, etag: string): string {
    checkRepoPath(this.repo, path);
    const link = join(this.snapshotDir(commit), ...path.split("/"));
    const blob = this.blobPath(etag);
    const target = relative(dirname(link), blob).split(sep).join("/");
    mkdirSync(dirname(link), { recursive: true });
    let st;
    try { st = lstatSync(link); } catch { st = null; }
    if (st?.isSymbolicLink() && readlinkSync(link) === target) return link;
    if (st) unlinkSync(link);
    try {
      symlinkSync(target, link);
    } catch {
      copyFileSync(blob, link);
    }
    return link;
  }
}
