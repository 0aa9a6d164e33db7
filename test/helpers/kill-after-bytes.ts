/**
 * Preload (`node --import …/kill-after-bytes.js`) for crash tests: the process SIGKILLs itself once it has written
 * XV_KILL_AFTER_BYTES bytes through fs.writeSync — a power cut or OOM kill in the middle of writing a model.
 */
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";

const limit = Number(process.env.XV_KILL_AFTER_BYTES ?? "0");
if (limit > 0) {
  let written = 0;
  const orig = fs.writeSync;
  (fs as { writeSync: unknown }).writeSync = (fd: number, buf: NodeJS.ArrayBufferView | string, ...rest: unknown[]) => {
    const n = (orig as (...a: unknown[]) => number)(fd, buf, ...rest);
    written += n;
    if (written >= limit && fd > 2) process.kill(process.pid, "SIGKILL");
    return n;
  };
  syncBuiltinESMExports();
}
