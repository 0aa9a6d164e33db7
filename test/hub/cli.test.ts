// The real binary against the local Hub stand-in, as a user runs it: --list, pull, --model by repo id,
// Ctrl-C and resume, a gated repo with and without HF_TOKEN / the token file.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../helpers/peers.js";
import { FixtureHub, sha256, storiesFiles } from "./fixture-server.js";

const REPO = "tiny-org/stories260K";
const COMMIT = "fedcba9876543210fedcba9876543210fedcba98";
const files = storiesFiles();
const weights = files.find((f) => f.lfs)!;
const bin = join(repoRoot, "bin", "xverse.js");
let hub: FixtureHub;
let home: string;

before(async () => {
  hub = await new FixtureHub(REPO, COMMIT, files).start();
  home = mkdtempSync(join(tmpdir(), "xverse-hubcli-"));
});
after(async () => { await hub.stop(); rmSync(home, { recursive: true, force: true }); });

interface Run { code: number | null; stdout: string; stderr: string }

/** Async, so the server in this process keeps answering while the child runs. */
function run(args: string[], env: Record<string, string> = {}, onSpawn?: (kill: () => void) => void): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, HF_ENDPOINT: hub.url, HF_HOME: home, HF_HUB_CACHE: join(home, "hub"), HF_TOKEN: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => { stdout += d; });
    child.stderr.on("data", (d) => { stderr += d; });
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    onSpawn?.(() => child.kill("SIGINT"));
  });
}

test("xverse pull --list shows the files with sizes, which are LFS, and the total", async () => {
  hub.reset();
  const r = await run(["pull", "--list", REPO]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^${REPO}@main \\(commit ${COMMIT}\\), 5 of 5 files\\n`));
  assert.match(r.stdout, /\n  model\.safetensors\s+1\.2 MB  lfs\n/);
  assert.match(r.stdout, /\n  config\.json\s+599 B\s*\n/);
  assert.match(r.stdout, /\ntotal 1\.2 MB\n$/);
  assert.deepEqual(hub.fileRequests(), [], "--list downloads nothing");
  const inc = await run(["pull", "--list", REPO, "--include", "*.json", "--exclude", "tokenizer*"]);
  assert.deepEqual(inc.stdout.split("\n").filter((l) => l.startsWith("  ")).map((l) => l.trim().split(/\s+/)[0]), ["config.json", "generation_config.json"]);
});

test("xverse pull, then --model REPO in generate and tokenize; without the cache and --pull it says how to get it", async () => {
  hub.reset();
  const miss = await run(["generate", "--model", REPO, "--greedy", "--max-new-tokens", "8", "Once upon a time"]);
  assert.equal(miss.code, 1);
  assert.match(miss.stderr, /^xverse generate: --model tiny-org\/stories260K: not a path on disk, and tiny-org\/stories260K is not in the model cache .*`xverse pull tiny-org\/stories260K`, or add --pull/);
  assert.equal(hub.log.length, 0, "no network without --pull");

  const p = await run(["pull", REPO]);
  assert.equal(p.code, 0, p.stderr);
  const snap = join(home, "hub", "models--tiny-org--stories260K", "snapshots", COMMIT);
  assert.equal(p.stdout, snap + "\n");
  assert.match(p.stderr, /tiny-org\/stories260K@main: 5 files, 1\.2 MB — 5 downloaded \(1\.2 MB in [\d.]+ s\), 0 already cached/);

  const gen = await run(["generate", "--model", REPO, "--greedy", "--max-new-tokens", "12", "--quiet", "Once upon a time"]);
  const ref = await run(["generate", "--greedy", "--max-new-tokens", "12", "--quiet", "Once upon a time"]);
  assert.equal(gen.code, 0, gen.stderr);
  assert.equal(gen.stdout, ref.stdout, "the pulled model is the embedded one");
  assert.ok(gen.stdout.length > 10);
  const tok = await run(["tokenize", "--model", `${REPO}@main`]);
  assert.equal(tok.code, 0, tok.stderr);

  hub.reset();
  const again = await run(["pull", REPO]);
  assert.match(again.stderr, /0 downloaded \(0 B in [\d.]+ s\), 5 already cached/);
  assert.deepEqual(hub.fileRequests(), []);
});

test("Ctrl-C leaves a resumable partial and exits 130; the same command resumes with Range", async () => {
  hub.reset();
  const cache = join(home, "ctrlc");
  hub.faults.stallAfter = new Map([["model.safetensors", 300_000]]);
  const inc = join(cache, "models--tiny-org--stories260K", "blobs", sha256(weights.data) + ".incomplete");
  const r = await run(["pull", REPO, "--include", "*.safetensors"], { HF_HUB_CACHE: cache }, (kill) => {
    const t = setInterval(() => {
      if (existsSync(inc) && statSync(inc).size >= 300_000) { clearInterval(t); kill(); }
    }, 20);
  });
  assert.equal(r.code, 130, r.stderr);
  assert.match(r.stderr, /xverse pull: interrupted: 300 kB of 1\.2 MB in the cache, 300 kB of it in resumable partials .* run the same command again to resume/);
  assert.equal(statSync(inc).size, 300_000);
  assert.ok(!existsSync(inc.replace(".incomplete", "")), "nothing under the final name");
  hub.reset();
  const again = await run(["pull", REPO, "--include", "*.safetensors"], { HF_HUB_CACHE: cache });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /model\.safetensors: resumed at byte 300000 of 1176152/);
  assert.equal(hub.log.find((e) => e.url.startsWith("/cdn/"))?.range, "bytes=300000-");
  assert.deepEqual(readFileSync(inc.replace(".incomplete", "")), Buffer.from(weights.data));
});

test("a gated repository: the error says how to pass a token; HF_TOKEN or huggingface-cli's token file works", async () => {
  hub.reset();
  hub.faults.token = "hf_gate";
  const cache = join(home, "gated");
  const r = await run(["pull", REPO, "--include", "config.json"], { HF_HUB_CACHE: cache });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^xverse pull: the Hugging Face Hub \(http:\/\/127\.0\.0\.1:\d+\) refused config\.json in tiny-org\/stories260K@main \(HTTP 401 GatedRepo\): the repository is gated or private — accept its terms on the model page with your account, then set HF_TOKEN=hf_… .*huggingface-cli login/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack");
  const ok = await run(["pull", REPO, "--include", "config.json"], { HF_HUB_CACHE: cache, HF_TOKEN: "hf_gate" });
  assert.equal(ok.code, 0, ok.stderr);
  const fileHome = mkdtempSync(join(tmpdir(), "xverse-hftok-"));
  try {
    writeFileSync(join(fileHome, "token"), "hf_gate\n");
    const viaFile = await run(["pull", REPO, "--include", "generation_config.json"], { HF_HOME: fileHome, HF_HUB_CACHE: cache });
    assert.equal(viaFile.code, 0, viaFile.stderr);
  } finally {
    rmSync(fileHome, { recursive: true, force: true });
  }
});
