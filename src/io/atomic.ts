/**
 * A file written under a temp name in the destination's directory and renamed into place on commit(), so readers
 * never see a half-written file and a crash or error leaves the destination untouched.
 */
import { closeSync, fsyncSync, openSync, readdirSync, readSync, renameSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { XverseError } from "../errors.js";

const ADVICE: Record<string, string> = {
  ENOSPC: "the disk is full: free some space or write somewhere else",
  EDQUOT: "the disk quota is used up: free some space or write somewhere else",
  EROFS: "the destination is on a read-only file system: choose a writable directory",
  EACCES: "permission denied: choose a directory you can write to",
  EPERM: "permission denied: choose a directory you can write to",
  EISDIR: "a directory is in the way: choose another output name",
  ENOTDIR: "a parent of the destination is a file, not a directory",
  EEXIST: "something already exists under that name",
  EMFILE: "too many open files: raise the limit (ulimit -n) or close other programs",
  EIO: "an I/O error (failing disk or lost network mount)",
  EFBIG: "the file is larger than the file system allows",
};

/**
 * A failed file-system call while writing `what` (a file or directory) as an XverseError saying what went wrong
 * and what to do — ENOSPC / EROFS / EACCES with a stack trace tell a user nothing. Anything that is not an errno
 * error (a bug) is returned as it is.
 */
export function writeError(what: string, e: unknown, note = "the previous output, if any, was not touched"): unknown {
  if (e instanceof XverseError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  if (typeof code !== "string" || !/^E[A-Z]+$/.test(code)) return e;
  const advice = ADVICE[code] ?? (e as Error).message;
  return new XverseError("write_failed", `writing ${what} failed (${code}): ${advice}; ${note}`, { cause: e });
}

/**
 * Removes temp files and directories a killed writer left in `dir`: names starting with `prefix` whose next
 * decimal number is the pid of a process that no longer exists (SIGKILL and power cuts skip every cleanup).
 * A live pid — this process, a parallel writer, or a reused pid — is left alone.
 */
export function removeStaleTemps(dir: string, prefix: string): void {
  let names: string[];
  try { names = readdirSync(dir); } catch { return; }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)/.exec(name.slice(prefix.length));
    if (!m || !/\.tmp|\.spool|tmp-/.test(name)) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    try { rmSync(join(dir, name), { recursive: true, force: true }); } catch { /* not ours to fight over */ }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

export class AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  private fd: number | null;
  private size = 0;

  /** `suffix` distinguishes helper files (e.g. a spool) that are never renamed, only removed. */
  constructor(path: string, suffix = ".tmp") {
    this.path = path;
    this.tempPath = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}${suffix}`);
    removeStaleTemps(dirname(path), `.${basename(path)}.`);
    try {
      this.fd = openSync(this.tempPath, "wx+");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const advice = (code && ADVICE[code]) ?? "check that the directory exists and is writable";
      throw new XverseError("write_failed",
        `cannot create ${this.tempPath} to write ${path}: ${(e as Error).message}; ${advice}`,
        { cause: e });
    }
  }

  get bytesWritten(): number { return this.size; }

  write(bytes: Uint8Array): void {
    const fd = this.live();
    let done = 0;
    try {
      while (done < bytes.length) {
        const len = Math.min(1 << 30, bytes.length - done);
        done += writeSync(fd, bytes, done, len, this.size + done);
      }
    } catch (e) {
      throw writeError(this.path, e);
    }
    this.size += bytes.length;
  }

  /** Appends this file's whole content to `dst`, 16 MiB at a time. */
  copyTo(dst: AtomicFile): void {
    const fd = this.live();
    const buf = new Uint8Array(Math.min(16 << 20, Math.max(1, this.size)));
    for (let pos = 0; pos < this.size;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, this.size - pos), pos);
      if (n === 0) throw new XverseError("write_failed", `${this.tempPath}: spool file shrank while copying`);
      dst.write(n === buf.length ? buf : buf.subarray(0, n));
      pos += n;
    }
  }

  /** fsync, close, rename over the destination. */
  commit(): void {
    const fd = this.live();
    try {
      fsyncSync(fd); // a full disk can surface only here (delayed allocation), never after the rename
    } catch (e) {
      throw writeError(this.path, e);
    }
    closeSync(fd);
    this.fd = null;
    try {
      renameSync(this.tempPath, this.path);
    } catch (e) {
      this.removeTemp();
      throw new XverseError("write_failed", `cannot rename ${this.tempPath} to ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    // Make the rename itself durable where the platform allows fsync on a directory.
    try {
      const dfd = openSync(dirname(this.path), "r");
      try { fsyncSync(dfd); } finally { closeSync(dfd); }
    } catch { /* not supported (e.g. Windows): the data itself is already synced */ }
  }

  /** Closes and deletes the temp file; safe to call more than once and after commit(). */
  abort(): void {
    if (this.fd === null) return;
    try { closeSync(this.fd); } catch { /* already failing; keep the first error */ }
    this.fd = null;
    this.removeTemp();
  }

  private removeTemp(): void {
    try { unlinkSync(this.tempPath); } catch { /* already gone */ }
  }

  private live(): number {
    if (this.fd === null) throw new Error(`AtomicFile ${this.tempPath} is already closed`);
    return this.fd;
  }
}

/** Writes a whole small file (config, log, report) atomically: temp name, fsync, rename; errors say what to do. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const out = new AtomicFile(path);
  try {
    out.write(typeof data === "string" ? Buffer.from(data, "utf8") : data);
    out.commit();
  } catch (e) {
    out.abort();
    throw writeError(path, e);
  }
}

/** Copies a file atomically (the copy appears complete under `dst` or not at all), 16 MiB at a time. */
export function copyFileAtomic(src: string, dst: string): void {
  const out = new AtomicFile(dst);
  let fd: number | null = null;
  try {
    fd = openSync(src, "r");
    const buf = new Uint8Array(16 << 20);
    for (let pos = 0; ;) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      out.write(buf.subarray(0, n));
      pos += n;
    }
    out.commit();
  } catch (e) {
    out.abort();
    throw writeError(dst, e);
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
