/**
 * `xverse serve` in a child process for the load benchmarks: port 0, waits for its "listening on URL" line (60 s at
 * most), throws with its stderr if it exits or never listens.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface ServeChild { url: string; child: ChildProcess; stderr: () => string }

/** Starts `node [nodeFlags] bin/xverse.js serve --port 0 [args]` (`env` is added to this process's). */
export async function startServe(args: string[], nodeFlags: string[] = [], env: Record<string, string> = {}): Promise<ServeChild> {
  const bin = join(dirname(fileURLToPath(import.meta.url)), "../../bin/xverse.js");
  const child = spawn(process.execPath, [...nodeFlags, bin, "serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let out = "", err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  for (let i = 0; i < 600 && !/listening on /.test(out); i++) {
    if (child.exitCode !== null) throw new Error(`xverse serve exited: ${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const m = /listening on (\S+)/.exec(out);
  if (!m) throw new Error(`xverse serve did not start: ${err}`);
  return { url: m[1], child, stderr: () => err };
}
