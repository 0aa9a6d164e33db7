/**
 * A file written under a temp name in the destination's directory and renamed into place on commit(), so readers
 * never see a half-written file and a crash or error leaves the destination untouched.
 */
import { closeSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { XverseError } from "../errors.js";

export class AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  private fd: number | null;
  private size = 0;

  /** `suffix` distinguishes helper files (e.g. a spool) that are never renamed, only removed. */
  constructor(path: string, suffix = ".tmp") {
    this.path = path;
    this.tempPath = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}${suffix}`);
    try {
      this.fd = openSync(this.tempPath, "wx+");
    } catch (e) {
      throw new XverseError("write_failed",
        `cannot create ${this.tempPath} to write ${path}: ${(e as Error).message}; check that the directory exists and is writable`,
        { cause: e });
    }
  }

  get bytesWritten(): number { return this.size; }

  write(bytes: Uint8Array): void {
    const fd = this.live();
    let done = 0;
    while (done < bytes.length) {
      const len = Math.min(1 << 30, bytes.length - done);
      done += writeSync(fd, bytes, done, len, this.size + done);
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
    fsyncSync(fd);
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
