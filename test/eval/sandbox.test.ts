// The HumanEval sandbox: the 164 canonical solutions pass, wrong ones fail, and escape attempts are contained.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readHumanEval } from "../../src/eval/data.js";
import { humanEvalProgram } from "../../src/eval/harness.js";
import { runManySandboxed, runPythonSandboxed, sandboxLayers } from "../../src/eval/sandbox.js";
import { fixture } from "../helpers/peers.js";

const layers = sandboxLayers();
const skip = !layers.python && "python3 not found";
const problems = readHumanEval(fixture("eval"));

test("all 164 canonical solutions pass their tests in the sandbox", { skip }, async () => {
  const programs = problems.map((p) => humanEvalProgram(p.prompt, p.canonicalSolution, p.test, p.entryPoint));
  const results = await runManySandboxed(programs, { concurrency: 4, timeoutMs: 20_000 });
  const failed = results.map((r, i) => (r.status === "passed" ? null : `${problems[i]!.taskId}: ${r.status} ${r.stderr.slice(-200)}`)).filter(Boolean);
  assert.deepEqual(failed, []);
});

test("wrong solutions fail: a wrong answer, a syntax error, an exception", { skip }, async () => {
  const p = problems[0]!; // has_close_elements
  for (const body of ["    return False\n", "    return (\n", "    raise ValueError('no')\n"]) {
    const r = await runPythonSandboxed(humanEvalProgram(p.prompt, body, p.test, p.entryPoint), { timeoutMs: 10_000 });
    assert.equal(r.status, "failed", body);
  }
});

// Raw _socket / _io calls get past the Python guards by design; only the OS layers (network and mount
// namespaces) stop them, so those cases run where sandboxLayers() found namespaces (root or user namespaces).
const osWalls = layers.namespaces.length > 0;

test("network: connecting out fails (socket module, urllib, and raw _socket where namespaces exist)", { skip }, async () => {
  const cases = [
    "import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=2)",
    "import urllib.request\nurllib.request.urlopen('http://example.com', timeout=2)",
  ];
  if (osWalls) cases.push("import _socket\ns = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\ns.settimeout(2)\ns.connect(('1.1.1.1', 80))");
  for (const code of cases) {
    const r = await runPythonSandboxed(code, { timeoutMs: 10_000 });
    assert.equal(r.status, "failed", `${code}\n${r.stderr}`);
  }
});

test("files: writes outside the temp dir fail (through _io too, where the OS walls exist); inside works", { skip }, async () => {
  const outside = mkdtempSync(join(tmpdir(), "xverse-escape-target-"));
  const shm = `/dev/shm/xverse-escape-${process.pid}`;
  try {
    const cases = [
      `open(${JSON.stringify(join(outside, "a.txt"))}, "w").write("x")`,
      `import os\nos.remove(${JSON.stringify(outside)})`,
    ];
    if (layers.dropUser.length) cases.push(`import _io\n_io.open(${JSON.stringify(join(outside, "b.txt"))}, "w").write("x")`);
    if (osWalls) cases.push(`import _io\n_io.open(${JSON.stringify(shm)}, "w").write("x")`);
    for (const code of cases) {
      const r = await runPythonSandboxed(code, { timeoutMs: 10_000 });
      assert.equal(r.status, "failed", code);
    }
    assert.ok(!existsSync(join(outside, "a.txt")) && !existsSync(join(outside, "b.txt")) && !existsSync(shm));
    assert.ok(existsSync(outside));
    const inside = await runPythonSandboxed("import os\nopen('x.txt', 'w').write('ok')\nassert open('x.txt').read() == 'ok'\nassert os.environ['HOME'] == os.getcwd()", { timeoutMs: 10_000 });
    assert.equal(inside.status, "passed", inside.stderr);
  } finally {
    rmSync(outside, { recursive: true, force: true });
    rmSync(shm, { force: true });
  }
});

test("fork bombs and endless loops are stopped, and no process survives", { skip }, async () => {
  const tag = `probe${process.pid}`;
  const opts = { timeoutMs: 3_000, tag };
  const bombs = [
    "import os\nwhile True:\n    os.fork()",
    "import subprocess\nwhile True:\n    subprocess.Popen(['sleep', '100'])",
    // posix.fork bypasses the Python guard: RLIMIT_NPROC, the PID namespace and the group kill must hold.
    "import posix\nwhile True:\n    try:\n        posix.fork()\n    except OSError:\n        pass",
  ];
  for (const code of bombs) {
    const r = await runPythonSandboxed(code, opts);
    assert.notEqual(r.status, "passed", code);
  }
  const t0 = Date.now();
  assert.equal((await runPythonSandboxed("while True:\n    pass", { ...opts, timeoutMs: 1_500 })).status, "timeout");
  assert.ok(Date.now() - t0 < 5_000, "killed promptly");
  assert.equal((await runPythonSandboxed("import time\ntime.sleep(60)", { ...opts, timeoutMs: 1_000 })).status, "timeout");
  await new Promise((r) => setTimeout(r, 300));
  const left = execFileSync("ps", ["-eo", "pid,args"], { encoding: "utf8" }).split("\n").filter((l) => l.includes(`xverse-sandbox-${tag}`));
  assert.deepEqual(left, []);
});

test("memory: allocating past the limit fails", { skip }, async () => {
  const r = await runPythonSandboxed("x = bytearray(2 * 1024 ** 3)", { timeoutMs: 10_000, memoryMb: 512 });
  assert.equal(r.status, "failed");
  assert.match(r.stderr, /MemoryError/);
});
