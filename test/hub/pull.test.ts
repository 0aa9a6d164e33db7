// pull() against a local Hub / ModelScope stand-in serving the embedded stories260K model's files: the cache in
// huggingface_hub's layout, loading by repo id, resume with Range, checksum failures, 401 / 404 / disk full.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, writeSync as fsWriteSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { spawnSync } from "node:child_process";
import { pull } from "../../src/hub/pull.js";
import { HfHub } from "../../src/hub/hf.js";
import { ModelScope } from "../../src/hub/modelscope.js";
import { resolveModelArg } from "../../src/cli/hub-env.js";
import { loadModel } from "../../src/model/load.js";
import { defaultModelDir } from "../../src/model/embedded.js";
import { generateText } from "../../src/generate/generate.js";
import { XverseError } from "../../src/errors.js";
import { FixtureHub, gitSha1, sha256, STORIES_FILE_NAMES, storiesFiles } from "./fixture-server.js";

const REPO = "tiny-org/stories260K";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const names = STORIES_FILE_NAMES;
const files = storiesFiles();
const weights = files.find((f) => f.lfs)!;
const fast = { retries: 3, backoffMs: 1 };
let hub: FixtureHub;
const dirs: string[] = [];
const tmp = () => { const d = mkdtempSync(join(tmpdir(), "xverse-hub-")); dirs.push(d); return d; };
const hf = (o: { token?: string } = {}) => new HfHub({ endpoint: hub.url, token: o.token, retry: fast });

before(async () => { hub = await new FixtureHub(REPO, COMMIT, files).start(); });
after(async () => { await hub.stop(); for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
const reset = () => hub.reset();

async function rejects(p: Promise<unknown>, code: string, re: RegExp): Promise<XverseError> {
  try { await p; } catch (e) {
    assert.ok(e instanceof XverseError, `not an XverseError: ${(e as Error).stack}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return e;
  }
  assert.fail("did not throw");
}

test("pull fills the cache in huggingface_hub's layout; the model loads by repo id; a second pull transfers nothing", async () => {
  reset();
  const cacheDir = tmp();
  const r = await pull(REPO, { cacheDir, source: hf() });
  const repoDir = join(cacheDir, "models--tiny-org--stories260K");
  assert.equal(readFileSync(join(repoDir, "refs", "main"), "utf8"), COMMIT, "refs/main holds the commit, no newline");
  assert.equal(r.snapshotDir, join(repoDir, "snapshots", COMMIT));
  for (const f of files) {
    // blob names are the Hub's ETags: sha256 for LFS files, the git blob sha1 otherwise
    const etag = f.lfs ? sha256(f.data) : gitSha1(f.data);
    assert.deepEqual(readFileSync(join(repoDir, "blobs", etag)), Buffer.from(f.data), f.path);
    const link = join(r.snapshotDir, f.path);
    assert.ok(lstatSync(link).isSymbolicLink(), `${f.path} is a link`);
    assert.equal(readlinkSync(link), `../../blobs/${etag}`);
  }
  assert.equal(readdirSync(join(repoDir, "blobs")).length, files.length, "no .incomplete left");
  assert.equal(r.transferred, files.reduce((n, f) => n + f.data.length, 0));
  // no compression on file requests: sizes and Range offsets must count the stored bytes
  assert.ok(hub.fileRequests().every((e) => e.encoding === "identity"), JSON.stringify(hub.fileRequests()));
  // the LFS file came through the redirect, the token-free CDN path
  assert.ok(hub.log.some((e) => e.url.startsWith(`/${REPO}/resolve/${COMMIT}/model.safetensors`)));
  assert.ok(hub.log.some((e) => e.url.startsWith(`/cdn/${sha256(weights.data)}`)));

  // by repo id, from the cache alone
  const path = await resolveModelArg(REPO, { env: { cacheDir } });
  assert.equal(path, r.snapshotDir);
  const opts = { backend: "ts" as const, onWarning: () => {} };
  const a = await loadModel(path, opts), b = await loadModel(undefined, opts);
  const ids = b.tokenizer.encode("Once upon a time").ids;
  const ga = await generateText(a.model, a.tokenizer, ids, { greedy: true, maxNewTokens: 12 });
  const gb = await generateText(b.model, b.tokenizer, ids, { greedy: true, maxNewTokens: 12 });
  assert.deepEqual(ga.ids, gb.ids, "same weights, same greedy tokens as the embedded model");

  reset();
  const again = await pull(REPO, { cacheDir, source: hf() });
  assert.equal(again.transferred, 0);
  assert.equal(again.cachedFiles, files.length);
  assert.deepEqual(hub.fileRequests(), [], "only the listing was fetched");
});

test("a connection cut mid-file resumes from the byte where it stopped (within one pull, and in the next pull)", async () => {
  reset();
  const cacheDir = tmp();
  hub.faults.cutAfter = new Map([["model.safetensors", 300_000]]);
  const events: string[] = [];
  await pull(REPO, { cacheDir, source: hf(), include: ["*.safetensors"], onEvent: (m) => events.push(m) });
  const cdn = hub.log.filter((e) => e.url.startsWith("/cdn/"));
  assert.equal(cdn.length, 2);
  assert.equal(cdn[0].range, undefined);
  assert.equal(cdn[1].range, "bytes=300000-", "the retry asks for the rest only");
  assert.ok(events.some((m) => /connection lost at byte 300000|closed at byte 300000/.test(m)), events.join("\n"));
  const blob = join(cacheDir, "models--tiny-org--stories260K", "blobs", sha256(weights.data));
  assert.deepEqual(readFileSync(blob), Buffer.from(weights.data));

  // no retries: the pull fails, the partial stays under .incomplete (never the final name), the next pull resumes
  reset();
  const cache2 = tmp();
  hub.faults.cutAfter = new Map([["model.safetensors", 500_000]]);
  await rejects(pull(REPO, { cacheDir: cache2, source: new HfHub({ endpoint: hub.url, retry: { retries: 0 } }), include: ["model.safetensors"] }),
    "network", /byte 500000 of 1176152.*gave up after 1 tries/);
  const inc = join(cache2, "models--tiny-org--stories260K", "blobs", sha256(weights.data) + ".incomplete");
  assert.equal(statSync(inc).size, 500_000);
  assert.ok(!existsSync(inc.replace(".incomplete", "")));
  assert.ok(!existsSync(join(cache2, "models--tiny-org--stories260K", "snapshots")), "no snapshot link to a missing blob");
  reset();
  const r = await pull(REPO, { cacheDir: cache2, source: hf(), include: ["model.safetensors"] });
  assert.equal(hub.log.find((e) => e.url.startsWith("/cdn/"))?.range, "bytes=500000-");
  assert.equal(r.transferred, weights.data.length - 500_000);
  assert.deepEqual(readFileSync(inc.replace(".incomplete", "")), Buffer.from(weights.data));
});

test("a server that ignores Range restarts the file from 0 and still verifies", async () => {
  reset();
  const cacheDir = tmp();
  hub.faults.cutAfter = new Map([["model.safetensors", 400_000]]);
  hub.faults.noRange = true;
  const r = await pull(REPO, { cacheDir, source: hf(), include: ["model.safetensors"] });
  assert.equal(r.transferred, 400_000 + weights.data.length);
  assert.deepEqual(readFileSync(join(r.snapshotDir, "model.safetensors")), Buffer.from(weights.data));
});

test("corrupted bytes fail the checksum and leave nothing (LFS sha256 and git sha1 files)", async () => {
  for (const path of ["model.safetensors", "config.json"]) {
    reset();
    const cacheDir = tmp();
    hub.faults.corrupt = new Set([path]);
    await rejects(pull(REPO, { cacheDir, source: hf(), include: [path] }), "checksum",
      new RegExp(`${path}: checksum mismatch — expected (sha256|git sha1) [0-9a-f]+, got [0-9a-f]+.*discarded`));
    const blobs = join(cacheDir, "models--tiny-org--stories260K", "blobs");
    assert.deepEqual(readdirSync(blobs), [], "neither the blob nor its partial");
    assert.ok(!existsSync(join(cacheDir, "models--tiny-org--stories260K", "snapshots")));
    assert.ok(!existsSync(join(cacheDir, "models--tiny-org--stories260K", "refs")));
  }
});

test("401 on a gated repo says how to pass a token; with one, every Hub request carries it", async () => {
  reset();
  hub.faults.token = "hf_secret";
  await rejects(pull(REPO, { cacheDir: tmp(), source: hf(), include: ["config.json"] }), "unauthorized", /HTTP 401 GatedRepo.*gated.*HF_TOKEN=.*huggingface-cli login/);
  reset();
  hub.faults.token = "hf_secret";
  await pull(REPO, { cacheDir: tmp(), source: hf({ token: "hf_secret" }), include: ["config.json", "model.safetensors"] });
  assert.ok(hub.log.filter((e) => e.url.includes("/resolve/")).every((e) => e.auth === "Bearer hf_secret"));
  // (a redirect to another host drops it: see units.test.ts)
  reset();
  hub.faults.token = "hf_secret";
  await rejects(pull(REPO, { cacheDir: tmp(), source: hf({ token: "hf_wrong" }), include: ["config.json"] }), "unauthorized", /check that your token has read access/);
});

test("404: a missing repository, revision or file is named as such", async () => {
  reset();
  await rejects(pull("tiny-org/nope", { cacheDir: tmp(), source: hf() }), "not_found", /no repository tiny-org\/nope.*private repository also answers this way without a token.*HF_TOKEN/);
  await rejects(pull(REPO, { cacheDir: tmp(), source: hf(), revision: "v9" }), "not_found", /has no revision "v9"/);
  hub.faults.missing = new Set(["tokenizer.json"]);
  await rejects(pull(REPO, { cacheDir: tmp(), source: hf(), include: ["tokenizer.json"] }), "not_found", /no file tokenizer\.json in tiny-org\/stories260K@main \(HTTP 404\)/);
  reset();
  await rejects(pull(REPO, { cacheDir: tmp(), source: hf(), include: ["*.gguf"] }), "not_found", /none matches --include/);
});

test("disk full: checked before downloading, and a failing write keeps the partial and says how much is needed", async () => {
  reset();
  const cacheDir = tmp();
  await rejects(pull(REPO, { cacheDir, source: hf(), freeBytes: () => 1000 }), "disk_full", /needs 1\.2 MB more \(5 files\), 1\.0 kB is free/);
  assert.deepEqual(hub.fileRequests(), []);
  // an injected ENOSPC after the first 200000 bytes of the weights
  let written = 0;
  const writeSync = (fd: number, buf: Uint8Array, off: number, len: number, pos: number) => {
    if (written + len > 200_000) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
    written += len;
    return fsWriteSync(fd, buf, off, len, pos);
  };
  const e = await rejects(pull(REPO, { cacheDir, source: hf(), include: ["model.safetensors"], writeSync }), "disk_full",
    /disk full while writing tiny-org\/stories260K\/model\.safetensors .*ENOSPC.*\d+ more bytes are needed.*kept \(the whole pull still needs/);
  const inc = join(cacheDir, "models--tiny-org--stories260K", "blobs", sha256(weights.data) + ".incomplete");
  assert.ok(statSync(inc).size > 0 && statSync(inc).size <= 200_000, e.message);
  // space freed: the same pull resumes and completes
  reset();
  const have = statSync(inc).size;
  await pull(REPO, { cacheDir, source: hf(), include: ["model.safetensors"] });
  assert.equal(hub.log.find((x) => x.url.startsWith("/cdn/"))?.range, `bytes=${have}-`);
});

test("Ctrl-C (an aborted signal) leaves a resumable partial, never a file under its final name", async () => {
  reset();
  const cacheDir = tmp();
  hub.faults.stallAfter = new Map([["model.safetensors", 250_000]]);
  const ac = new AbortController();
  const p = pull(REPO, { cacheDir, source: hf(), include: ["model.safetensors"], signal: ac.signal,
    onProgress: (x) => { if (x.done >= 250_000) ac.abort(); } });
  await rejects(p, "interrupted", /interrupted: 250 kB of 1\.2 MB in the cache, 250 kB of it in resumable partials .*blobs\/\*\.incomplete\) — run the same command again to resume/);
  const blob = join(cacheDir, "models--tiny-org--stories260K", "blobs", sha256(weights.data));
  assert.equal(statSync(blob + ".incomplete").size, 250_000);
  assert.ok(!existsSync(blob));
  reset();
  await pull(REPO, { cacheDir, source: hf(), include: ["model.safetensors"] });
  assert.equal(hub.log.find((x) => x.url.startsWith("/cdn/"))?.range, "bytes=250000-");
  assert.deepEqual(readFileSync(blob), Buffer.from(weights.data));
});

test("a connection that goes silent is dropped after the idle timeout and resumed with Range", async () => {
  reset();
  const cacheDir = tmp();
  hub.faults.stallAfter = new Map([["model.safetensors", 250_000]]);
  const events: string[] = [];
  const r = await pull(REPO, { cacheDir, source: hf(), include: ["model.safetensors"], idleTimeoutMs: 150, onEvent: (m) => events.push(m) });
  assert.ok(events.some((m) => /no data for 0\.15 s at byte 250000 of 1176152; retrying/.test(m)), events.join("\n"));
  assert.deepEqual(hub.log.filter((e) => e.url.startsWith("/cdn/")).map((e) => e.range), [undefined, "bytes=250000-"]);
  assert.deepEqual(readFileSync(join(r.snapshotDir, "model.safetensors")), Buffer.from(weights.data));
});

test("two paths with the same content download once and both link to the one blob", async () => {
  const twin = new FixtureHub("tiny-org/twins", COMMIT, [{ path: "a/w.bin", data: weights.data, lfs: true }, { path: "b/w.bin", data: weights.data, lfs: true }]);
  await twin.start();
  try {
    const cacheDir = tmp();
    const r = await pull("tiny-org/twins", { cacheDir, source: new HfHub({ endpoint: twin.url, retry: fast }) });
    assert.equal(r.transferred, weights.data.length);
    assert.equal(twin.log.filter((e) => e.url.startsWith("/cdn/")).length, 1);
    for (const p of ["a/w.bin", "b/w.bin"]) {
      assert.equal(readlinkSync(join(r.snapshotDir, p)), `../../../blobs/${sha256(weights.data)}`);
      assert.deepEqual(readFileSync(join(r.snapshotDir, p)), Buffer.from(weights.data));
    }
  } finally {
    await twin.stop();
  }
});

test("two pulls of one blob at once: one downloads, the other waits for it; a dead process's lock is taken over", async () => {
  reset();
  const cacheDir = tmp();
  hub.faults.cutAfter = new Map([["model.safetensors", 300_000]]);
  const events: string[] = [];
  const slow = { retries: 3, backoffMs: 300 };
  const [a, b] = await Promise.all([
    pull(REPO, { cacheDir, source: hf(), include: ["model.safetensors"], retry: slow, onEvent: (m) => events.push(`a: ${m}`) }),
    pull(REPO, { cacheDir, source: hf(), include: ["model.safetensors"], retry: slow, onEvent: (m) => events.push(`b: ${m}`) }),
  ]);
  assert.equal(a.transferred + b.transferred, weights.data.length + 0, events.join("\n"));
  assert.deepEqual(hub.log.filter((e) => e.url.startsWith("/cdn/")).map((e) => e.range), [undefined, "bytes=300000-"]);
  assert.ok(events.some((m) => /model\.safetensors: process \d+ is downloading it; waiting for it to finish/.test(m)), events.join("\n"));
  assert.deepEqual(readFileSync(join(a.snapshotDir, "model.safetensors")), Buffer.from(weights.data));
  assert.ok(!existsSync(join(cacheDir, ".locks", "models--tiny-org--stories260K", `${sha256(weights.data)}.xverse.lock`)), "released");

  // a lock left by a process that is gone (killed mid-pull) does not block
  reset();
  const cache2 = tmp();
  const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
  const lock = join(cache2, ".locks", "models--tiny-org--stories260K", `${sha256(weights.data)}.xverse.lock`);
  mkdirSync(dirname(lock), { recursive: true });
  writeFileSync(lock, `${dead} ${hostname()}`);
  const r = await pull(REPO, { cacheDir: cache2, source: hf(), include: ["model.safetensors"] });
  assert.equal(r.transferred, weights.data.length);
  assert.ok(!existsSync(lock));
});

test("ModelScope: file list + download API, sha256-named blobs shared with a Hub pull, refs/master", async () => {
  reset();
  const cacheDir = tmp();
  const ms = new ModelScope({ endpoint: hub.url, retry: fast });
  hub.faults.cutAfter = new Map([["model.safetensors", 100_000]]);
  const r = await pull(REPO, { cacheDir, source: ms });
  assert.ok(hub.log.some((e) => e.url.startsWith(`/api/v1/models/${REPO}/repo/files?Revision=master&Recursive=true`)));
  assert.ok(hub.log.some((e) => e.url.startsWith(`/api/v1/models/${REPO}/repo?Revision=master&FilePath=config.json`)));
  assert.equal(hub.log.filter((e) => e.url.startsWith("/cdn/") && e.range === "bytes=100000-").length, 1);
  const repoDir = join(cacheDir, "models--tiny-org--stories260K");
  assert.equal(readFileSync(join(repoDir, "refs", "master"), "utf8"), r.listing.commit);
  assert.deepEqual(r.selected.map((f) => f.path).sort(), [...names].sort(), ".gitattributes and folders are skipped");
  for (const f of files) assert.deepEqual(readFileSync(join(repoDir, "blobs", sha256(f.data))), Buffer.from(f.data));
  assert.equal(await resolveModelArg(REPO, { env: { cacheDir }, source: "modelscope" }), r.snapshotDir);
  assert.equal(await resolveModelArg(REPO, { env: { cacheDir } }), r.snapshotDir, "no refs/main: refs/master serves a plain --model REPO");
  // the Hub's LFS blob has the same name: a Hub pull of the weights afterwards transfers nothing
  reset();
  const h = await pull(REPO, { cacheDir, source: hf(), include: ["model.safetensors"] });
  assert.equal(h.transferred, 0);
  await rejects(pull("tiny-org/nope", { cacheDir, source: ms }), "not_found", /has no repository tiny-org\/nope/);
  await rejects(pull(REPO, { cacheDir, source: ms, revision: "v2" }), "not_found", /no tiny-org\/stories260K@v2 \(revision not found\)/);
});

test("--model REPO without --pull never downloads; with pull: true it does", async () => {
  reset();
  const cacheDir = tmp();
  await rejects(resolveModelArg(REPO, { env: { cacheDir } }), "not_found",
    /not a path on disk, and tiny-org\/stories260K is not in the model cache .*xverse pull tiny-org\/stories260K.*--pull/);
  assert.equal(hub.log.length, 0, "nothing was fetched");
  const path = await resolveModelArg(`${REPO}@main`, { env: { cacheDir, hfEndpoint: hub.url }, pull: true });
  assert.equal(path, join(cacheDir, "models--tiny-org--stories260K", "snapshots", COMMIT));
  assert.equal(hub.log.filter((e) => e.url.includes("/resolve/")).length, files.length);
  // an existing path is a path, even when spelled like a repo id
  assert.equal(await resolveModelArg(defaultModelDir(), { env: { cacheDir } }), defaultModelDir());
});
