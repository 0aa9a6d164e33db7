/**
 * One downloader per blob across processes (two `xverse serve --pull` at once, say): a lock file created with
 * O_EXCL under <cache>/.locks/models--org--name/<etag>.xverse.lock holding "<pid> <host>". A lock whose process is
 * gone (same host, pid not alive) is taken over, so a killed pull never blocks the next one. huggingface_hub locks
 * <etag>.lock in the same folder with flock(), which Node cannot take; the name differs so neither waits on the
 * other's leftover files (both verify what they download, and a blob is only ever renamed into place whole).
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import { XverseError } from "../errors.js";
import { sleep } from "./http.js";

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === "EPERM"; }
}

export async function withFileLock<T>(path: string, o: { signal?: AbortSignal; onWait?: (holderPid: number) => void; pollMs?: number }, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const me = `${process.pid} ${hostname()}`;
  let waited = false;
  for (;;) {
    try {
      const fd = openSync(path, "wx");
      try { writeSync(fd, me); } finally { closeSync(fd); }
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let holder = "";
    try { holder = readFileSync(path, "utf8"); } catch { continue; } // released meanwhile
    const [pidStr, host] = holder.split(" ");
    const pid = Number(pidStr);
    if (!Number.isInteger(pid) || pid <= 0 || (host === hostname() && !alive(pid))) {
      try { unlinkSync(path); } catch { /* someone else took it over first */ }
      continue;
    }
    if (!waited) { waited = true; o.onWait?.(pid); }
    await sleep(o.pollMs ?? 500, o.signal);
    if (o.signal?.aborted) throw new XverseError("interrupted", `interrupted while waiting for process ${pid}, which is downloading the same file`);
  }
  try {
    return await fn();
  } finally {
    try { if (readFileSync(path, "utf8") === me) unlinkSync(path); } catch { /* already gone */ }
  }
}
