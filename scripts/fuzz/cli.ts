/**
 * `npm run fuzz -- TARGET|--all [--seconds N] [--runs N] [--save]`: builds an instrumented copy of dist/src
 * (jazzer.js's Babel coverage and compare-hook plugins; into .fuzz-build/, redone when dist/ is newer) and runs
 * engine.ts on each target in its own process, seeded from fuzz/corpus/<target>/. Findings (the input that
 * crashed, hung or ran away with memory) go to fuzz/findings/<target>/; the exit status is non-zero if there was
 * one. `--save` adds the inputs that found new coverage to the corpus directory. `--jobs N` runs N targets at once.
 */
import { spawn } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";
import { TARGETS } from "../../test/fuzz/targets.js";

const repo = process.cwd();
const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    all: { type: "boolean", default: false }, seconds: { type: "string", default: "10" }, runs: { type: "string" },
    save: { type: "boolean", default: false }, jobs: { type: "string", default: "1" }, "timeout-ms": { type: "string", default: "2000" },
    "rss-mb": { type: "string", default: "2048" }, seed: { type: "string" },
  },
});
const names = a.all ? Object.keys(TARGETS) : positionals;
if (!names.length || names.some((n) => !(n in TARGETS))) {
  process.stderr.write(`usage: npm run fuzz -- TARGET|--all [--seconds N] [--runs N] [--save] [--jobs N]\ntargets: ${Object.keys(TARGETS).join(", ")}\n`);
  process.exit(2);
}

const build = join(repo, ".fuzz-build");
const srcDist = join(repo, "dist", "src");

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

/** Instruments every dist/src/**.js into .fuzz-build/dist/src; returns the number of edges. */
function instrument(): number {
  const stamp = join(build, "edges.json");
  const fresh = Math.max(newest(srcDist), newest(join(repo, "dist", "test", "fuzz")), newest(join(repo, "dist", "scripts", "fuzz")), statSync(join(repo, "package-lock.json")).mtimeMs);
  if (existsSync(stamp) && statSync(stamp).mtimeMs > fresh) return JSON.parse(readFileSync(stamp, "utf8")).edges;
  const require = createRequire(join(repo, "node_modules", "@jazzer.js", "instrumentor", "package.json"));
  // @babel/core comes with @jazzer.js/instrumentor (no types needed: one call)
  const babel = require("@babel/core") as { transformSync(code: string, opts: object): { code?: string | null } | null };
  const { codeCoverage } = require("./dist/plugins/codeCoverage.js");
  const { compareHooks } = require("./dist/plugins/compareHooks.js");
  let next = 1;
  const ids = { nextEdgeId: () => next++ };
  const transform = (code: string, filename: string) =>
    babel.transformSync(code, { filename, sourceType: "module", babelrc: false, configFile: false, compact: false, plugins: [codeCoverage(ids), compareHooks] });
  rmSync(build, { recursive: true, force: true });
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) { walk(p); continue; }
      if (!e.name.endsWith(".js")) continue;
      const out = join(build, relative(repo, p));
      mkdirSync(dirname(out), { recursive: true });
      const code = readFileSync(p, "utf8");
      // pages are HTML in strings, cli/ and backend/ are not reached by any target: left as they are
      const skip = /[/\\](pages|cli|backend|train|eval|hub)[/\\]/.test(p);
      const r = skip ? null : transform(code, p);
      writeFileSync(out, r?.code ?? code);
    }
  };
  walk(srcDist);
  // the Jinja engine chat templates run on is a dependency: an instrumented copy where resolution finds it first
  const jinja = join(repo, "node_modules", "@huggingface", "jinja");
  const jOut = join(build, "node_modules", "@huggingface", "jinja");
  mkdirSync(join(jOut, "dist"), { recursive: true });
  cpSync(join(jinja, "package.json"), join(jOut, "package.json"));
  const jsrc = join(jinja, "dist", "index.js");
  const jr = transform(readFileSync(jsrc, "utf8"), jsrc);
  writeFileSync(join(jOut, "dist", "index.js"), jr!.code!);
  cpSync(join(repo, "dist", "test", "fuzz"), join(build, "dist", "test", "fuzz"), { recursive: true });
  cpSync(join(repo, "dist", "scripts", "fuzz"), join(build, "dist", "scripts", "fuzz"), { recursive: true });
  writeFileSync(join(build, "package.json"), JSON.stringify({ type: "module" }));
  writeFileSync(stamp, JSON.stringify({ edges: next }));
  return next;
}

const edges = instrument();
process.stderr.write(`instrumented: ${edges} edges\n`);
const results: Record<string, unknown>[] = [];
let failed = 0;

/** Reruns a timeout finding alone in a fresh process: a busy machine can stall one execution past the bound. */
function reproduces(name: string, file: string): Promise<boolean> {
  const dir = mkdtempSync(join(tmpdir(), "xv-fuzz-check-"));
  mkdirSync(join(dir, name));
  cpSync(file, join(dir, name, "input"));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(build, "dist", "scripts", "fuzz", "engine.js"), name, "--runs", "0", "--corpus", dir, "--out", join(dir, "out"),
      "--edges", String(edges), "--timeout-ms", a["timeout-ms"]!, "--rss-mb", a["rss-mb"]!], { cwd: repo, env: { ...process.env, XVERSE_REPO: repo }, stdio: "ignore" });
    child.on("close", (code) => { rmSync(dir, { recursive: true, force: true }); resolve(code !== 0); });
  });
}

function newestFinding(name: string, since: number): string | null {
  const dir = join(repo, "fuzz", "findings", name);
  if (!existsSync(dir)) return null;
  const files = readdirSync(dir).map((f) => join(dir, f)).filter((p) => statSync(p).mtimeMs >= since);
  return files.sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)[0] ?? null;
}

async function runOne(name: string): Promise<void> {
  const t0 = Date.now();
  let execs = 0;
  for (;;) {
    const left = Number(a.seconds) - (Date.now() - t0) / 1000;
    const r = await runEngine(name, Math.max(1, Math.round(left)), a.runs ? Number(a.runs) - execs : undefined);
    if (r.ok) { execs += r.result.execs as number; r.result.execs = execs; r.result.seconds = Math.round((Date.now() - t0) / 1000); results.push(r.result); return; }
    const file = newestFinding(name, t0);
    // a timeout that does not happen again alone was the machine, not the input: drop it and go on fuzzing
    if (r.signal && file && /timeout-/.test(file) && !(await reproduces(name, file)) && Date.now() - t0 < Number(a.seconds) * 1000) {
      process.stderr.write(`${name}: timeout not reproducible alone (a busy machine); ${file} removed, fuzzing goes on\n`);
      rmSync(file);
      continue;
    }
    failed++;
    results.push({ target: name, finding: file ?? "(see above)", how: r.signal ? `killed by ${r.signal} (timeout / memory)` : `exit ${r.code}` });
    return;
  }
}

function runEngine(name: string, seconds: number, runs?: number): Promise<{ ok: true; result: Record<string, unknown> } | { ok: false; code: number | null; signal: string | null }> {
  return new Promise((resolve) => {
    const args = [join(build, "dist", "scripts", "fuzz", "engine.js"), name, "--seconds", String(seconds), "--corpus", join(repo, "fuzz", "corpus"),
      "--out", join(repo, "fuzz", "findings"), "--edges", String(edges), "--timeout-ms", a["timeout-ms"]!, "--rss-mb", a["rss-mb"]!];
    if (runs !== undefined) args.push("--runs", String(runs));
    if (a.save) args.push("--save");
    if (a.seed) args.push("--seed", a.seed);
    const child = spawn(process.execPath, ["--max-old-space-size=1024", "--stack-size=984", ...args], { cwd: repo, env: { ...process.env, XVERSE_REPO: repo }, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (b) => { out += b; });
    child.on("close", (code, signal) => {
      const line = out.trim().split("\n").pop();
      resolve(code === 0 && line ? { ok: true, result: JSON.parse(line) } : { ok: false, code, signal });
    });
  });
}

const queue = [...names];
await Promise.all(Array.from({ length: Math.max(1, Number(a.jobs)) }, async () => {
  for (let n = queue.shift(); n; n = queue.shift()) await runOne(n);
}));
for (const r of results) process.stdout.write(JSON.stringify(r) + "\n");
process.exit(failed ? 1 : 0);
