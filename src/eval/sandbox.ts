/**
 * Runs untrusted Python (HumanEval candidates) in a child process, walled in as far as this machine allows.
 * What is contained, and how (each layer is used when the probe at first use finds it works):
 * - network: a fresh network namespace (`unshare --net`: no interfaces but a downed loopback) when we are root
 *   or user namespaces are allowed; always, the Python preamble disables socket creation, and the environment
 *   points http(s)_proxy at a closed port.
 * - processes: a PID namespace (`unshare --pid --fork --kill-child`), so when the program's first process ends
 *   or is killed every process it started dies with it; the child runs in its own process group, which is
 *   SIGKILLed on timeout; RLIMIT_NPROC caps forks (effective for a non-root uid); the preamble disables
 *   fork/exec/subprocess/ctypes.
 * - files: cwd, HOME and TMPDIR are a fresh temp directory, removed afterwards; as root the program runs as
 *   uid/gid 65534 (nobody, via setpriv), so the OS refuses writes outside that directory except in
 *   world-writable places; inside the mount namespace those (/tmp, /var/tmp, /dev/shm, /run/lock) are
 *   re-mounted read-only with only the temp directory bound read-write on top. The preamble also guards
 *   open/os.open/os.remove…; RLIMIT_FSIZE caps file size at 16 MiB.
 * - time and memory: a wall-clock timeout (process group SIGKILL), RLIMIT_CPU, and RLIMIT_AS/RLIMIT_DATA
 *   (default 1 GiB); captured output is capped at 64 KiB per stream.
 * Without root or user namespaces only the preamble, the rlimits, the process group and the timeout remain:
 * `sandboxLayers()` reports what was in force, and the eval report records it.
 */
import { spawn, spawnSync } from "node:child_process";
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SANDBOX_PREAMBLE } from "./sandbox-preamble.js";

export interface SandboxOptions {
  timeoutMs?: number;
  memoryMb?: number;
  /** RLIMIT_NPROC for the program's uid. */
  maxProcesses?: number;
  python?: string;
  /** Goes into the temp dir's name (and so into the child's argv): lets a caller find its processes. */
  tag?: string;
}

export interface SandboxResult {
  status: "passed" | "failed" | "timeout";
  exitCode: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface SandboxLayers {
  python: string | null;
  /** The namespace wrapper, e.g. ["unshare", "--net", …], or [] when none works here. */
  namespaces: string[];
  /** The uid drop, e.g. ["setpriv", "--reuid=65534", …], or []. */
  dropUser: string[];
  uid: number | null;
}

const NOBODY = 65534;
const MOUNT_SCRIPT = [
  'W="$1"; shift',
  'for d in /tmp /var/tmp /dev/shm /run/lock; do [ -d "$d" ] && mount --bind "$d" "$d" && mount -o remount,bind,ro "$d"; done 2>/dev/null',
  'mount --bind "$W" "$W" 2>/dev/null && mount -o remount,bind,rw "$W" 2>/dev/null',
  'exec "$@"',
].join("\n");
const OUTPUT_CAP = 64 * 1024;
let probed: SandboxLayers | null = null;

function works(cmd: string, args: string[]): boolean {
  try {
    return spawnSync(cmd, args, { stdio: "ignore", timeout: 5000 }).status === 0;
  } catch {
    return false;
  }
}

/** What isolation this machine offers; probed once per process. */
export function sandboxLayers(python = "python3"): SandboxLayers {
  if (probed && probed.python === python) return probed;
  const root = process.getuid?.() === 0;
  const ns = ["--net", "--pid", "--fork", "--kill-child", "--mount-proc"];
  let namespaces: string[] = [];
  if (works("unshare", [...ns, "true"])) namespaces = ["unshare", ...ns];
  else if (works("unshare", ["--map-root-user", ...ns, "true"])) namespaces = ["unshare", "--map-root-user", ...ns];
  const drop = ["setpriv", `--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups"];
  // Under --map-root-user "root" is our own uid mapped; nobody is unmapped there, so no uid drop.
  const dropUser = root && !namespaces.includes("--map-root-user") && works(drop[0]!, [...drop.slice(1), "true"]) ? drop : [];
  probed = { python: works(python, ["-c", "pass"]) ? python : null, namespaces, dropUser, uid: dropUser.length ? NOBODY : process.getuid?.() ?? null };
  return probed;
}

/** A one-line description of the isolation in force, for reports. */
export function describeSandbox(l: SandboxLayers = sandboxLayers()): string {
  const parts = [
    l.namespaces.length ? `network+PID namespaces (${l.namespaces.includes("--map-root-user") ? "user ns" : "root"})` : "no namespaces (Python-level network block only)",
    l.dropUser.length ? "uid 65534" : `uid ${l.uid}`,
    "rlimits (AS, CPU, NPROC, FSIZE)", "Python guards", "temp cwd/HOME", "process-group kill on timeout",
  ];
  return parts.join(", ");
}

/** Runs one Python program in the sandbox. `passed` = exit code 0 within the time limit. */
export async function runPythonSandboxed(program: string, opts: SandboxOptions = {}): Promise<SandboxResult> {
  const layers = sandboxLayers(opts.python);
  if (!layers.python) throw new Error(`${opts.python ?? "python3"} was not found: HumanEval needs Python 3 to run candidates`);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const memBytes = (opts.memoryMb ?? 1024) * 1024 * 1024;
  const work = mkdtempSync(join(tmpdir(), `xverse-sandbox-${opts.tag ? `${opts.tag.replace(/[^\w-]/g, "")}-` : ""}`));
  try {
    writeFileSync(join(work, "program.py"), program);
    writeFileSync(join(work, "preamble.py"), SANDBOX_PREAMBLE);
    if (layers.dropUser.length) {
      chownSync(work, NOBODY, NOBODY);
      for (const f of ["program.py", "preamble.py"]) chownSync(join(work, f), NOBODY, NOBODY);
    }
    const cpuSeconds = Math.max(1, Math.ceil(timeoutMs / 1000) + 1);
    // In the new mount namespace: world-writable dirs read-only, the work dir read-write (errors ignored: the
    // preamble's guards still hold where a mount is refused).
    const mounts = layers.namespaces.length
      ? ["sh", "-c", MOUNT_SCRIPT, "sh", work]
      : [];
    const argv = [
      ...layers.namespaces, ...mounts, ...layers.dropUser,
      layers.python, "-I", "-B", join(work, "preamble.py"), work, String(memBytes), String(cpuSeconds), String(opts.maxProcesses ?? 16),
    ];
    const env = {
      PATH: "/usr/local/bin:/usr/bin:/bin", HOME: work, TMPDIR: work, LANG: "C.UTF-8", PYTHONHASHSEED: "0",
      http_proxy: "http://127.0.0.1:9", https_proxy: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9",
      HTTPS_PROXY: "http://127.0.0.1:9", all_proxy: "http://127.0.0.1:9", no_proxy: "",
    };
    return await runChild(argv, work, env, timeoutMs);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function runChild(argv: string[], cwd: string, env: Record<string, string>, timeoutMs: number): Promise<SandboxResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // detached: the child leads a new process group, so one kill(-pgid) reaches everything it spawned.
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const out = { stdout: "", stderr: "" };
    const collect = (key: "stdout" | "stderr") => (chunk: Buffer) => {
      if (out[key].length < OUTPUT_CAP) out[key] += chunk.toString("utf8").slice(0, OUTPUT_CAP - out[key].length);
    };
    child.stdout.on("data", collect("stdout"));
    child.stderr.on("data", collect("stderr"));
    let timedOut = false;
    const killGroup = () => {
      try { process.kill(-child.pid!, "SIGKILL"); } catch { /* already gone */ }
    };
    const timer = setTimeout(() => { timedOut = true; killGroup(); }, timeoutMs);
    child.on("error", (e) => { clearTimeout(timer); reject(e); });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      // Anything left in the group (a daemonised grandchild outside a PID namespace) goes too.
      killGroup();
      const status = timedOut ? "timeout" : code === 0 ? "passed" : "failed";
      resolve({ status, exitCode: code, signal, stdout: out.stdout, stderr: out.stderr, durationMs: Date.now() - started });
    });
  });
}

/** Runs programs with bounded parallelism, results in input order. */
export async function runManySandboxed(programs: string[], opts: SandboxOptions & { concurrency?: number } = {}): Promise<SandboxResult[]> {
  const results: SandboxResult[] = new Array(programs.length);
  let next = 0;
  const worker = async () => {
    while (next < programs.length) {
      const i = next++;
      results[i] = await runPythonSandboxed(programs[i]!, opts);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 2) }, worker));
  return results;
}
