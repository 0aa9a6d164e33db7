// The pieces of src/hub on their own: globs and file sets, repo-id parsing and GGUF choice in a snapshot,
// the token kept from other hosts, the environment read like huggingface_hub, listing parsers.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { globToRegExp, selectFiles } from "../../src/hub/select.js";
import { ggufModels, modelInSnapshot, parseRepoRef } from "../../src/hub/resolve.js";
import { fetchFollow, withRetry, RetryableError } from "../../src/hub/http.js";
import { parseHfListing } from "../../src/hub/hf.js";
import { parseModelScopeListing } from "../../src/hub/modelscope.js";
import { RepoCache } from "../../src/hub/cache.js";
import { fmtDuration, hubEnv, pullProgress } from "../../src/cli/hub-env.js";
import { XverseError } from "../../src/errors.js";
import type { RemoteFile } from "../../src/hub/types.js";

const rf = (path: string): RemoteFile => ({ path, size: 1, etag: "e", lfs: false });
const pick = (paths: string[], inc?: string[], exc?: string[]) => selectFiles(paths.map(rf), inc, exc).map((f) => f.path);

test("globs follow fnmatch: * crosses /, ?, [set], [!set], a trailing / means everything under it", () => {
  assert.ok(globToRegExp("*q4_k_m*").test("gguf/XVERSE-13B-Chat-q4_k_m.gguf"));
  assert.ok(!globToRegExp("*q4_k_m*").test("XVERSE-13B-Chat-Q4_K_M.gguf"), "case-sensitive, as huggingface_hub");
  assert.ok(globToRegExp("model-0000?-of-00002.safetensors").test("model-00001-of-00002.safetensors"));
  assert.ok(globToRegExp("*.[jt]son").test("a.json") && !globToRegExp("*.[!j]son").test("a.json"));
  assert.ok(globToRegExp("onnx/").test("onnx/model.onnx") && !globToRegExp("onnx/").test("model.onnx"));
  assert.ok(globToRegExp("a+b(1).json").test("a+b(1).json"), "regex characters are literal");
});

test("a file of a set brings the rest: byte-split GGUF parts, gguf-split parts, shards with their index", () => {
  const repo = [
    "README.md", "config.json",
    "x-q4_k_m.gguf.aa", "x-q4_k_m.gguf.ab", "x-q8_0.gguf",
    "big-q8_0-00001-of-00003.gguf", "big-q8_0-00002-of-00003.gguf", "big-q8_0-00003-of-00003.gguf",
    "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json",
    "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json",
  ];
  assert.deepEqual(pick(repo, ["*q4_k_m*"]), ["x-q4_k_m.gguf.aa", "x-q4_k_m.gguf.ab"]);
  assert.deepEqual(pick(repo, ["big-q8_0-00002-of-00003.gguf"]), ["big-q8_0-00001-of-00003.gguf", "big-q8_0-00002-of-00003.gguf", "big-q8_0-00003-of-00003.gguf"]);
  assert.deepEqual(pick(repo, ["*.json"], ["*.bin*"]),
    ["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]);
  assert.deepEqual(pick(repo, ["model-00001*"]), ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]);
  assert.deepEqual(pick(repo, undefined, ["*.bin", "*.gguf*", "*.bin.index.json"]),
    ["README.md", "config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]);
});

test("parseRepoRef: org/name[@rev][:tag]; paths and file names are not repo ids", () => {
  assert.deepEqual(parseRepoRef("xverse/XVERSE-13B-Chat-GGUF@v1.0:q4_k_m"), { repo: "xverse/XVERSE-13B-Chat-GGUF", revision: "v1.0", tag: "q4_k_m" });
  assert.deepEqual(parseRepoRef("xverse/XVERSE-7B"), { repo: "xverse/XVERSE-7B", revision: undefined, tag: undefined });
  assert.equal(parseRepoRef("refs/pr/1"), null);
  for (const s of ["./models/x", "/abs/x", "models/x.gguf", "x", "a/b/c", "../a/b", "a/b.safetensors"]) assert.equal(parseRepoRef(s), null, s);
});

test("a GGUF repository's snapshot: one model loads directly, several need a :TAG, split sets count once", () => {
  const dir = mkdtempSync(join(tmpdir(), "xverse-snap-"));
  try {
    for (const f of ["X-Q4_K_M.gguf.aa", "X-Q4_K_M.gguf.ab", "X-Q8_0-00001-of-00002.gguf", "X-Q8_0-00002-of-00002.gguf", "mmproj-f16.gguf", "README.md"]) writeFileSync(join(dir, f), "");
    assert.deepEqual(ggufModels(dir), ["X-Q4_K_M.gguf", "X-Q8_0-00001-of-00002.gguf"]);
    const ref = { repo: "o/X-GGUF" };
    assert.equal(modelInSnapshot(dir, { ...ref, tag: "q4_k_m" }), join(dir, "X-Q4_K_M.gguf"));
    assert.equal(modelInSnapshot(dir, { ...ref, tag: "Q8_0" }), join(dir, "X-Q8_0-00001-of-00002.gguf"));
    assert.throws(() => modelInSnapshot(dir, ref), (e: XverseError) => e.code === "ambiguous_model" && /pick one with o\/X-GGUF:TAG, e\.g\. o\/X-GGUF:Q4_K_M/.test(e.message));
    assert.throws(() => modelInSnapshot(dir, { ...ref, tag: "q2_k" }), (e: XverseError) => /no cached GGUF file's name contains "q2_k".*--include "\*q2_k\*"/s.test(e.message));
    writeFileSync(join(dir, "config.json"), "{}");
    assert.equal(modelInSnapshot(dir, ref), dir, "a checkpoint folder is the model");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the token goes with redirects on the same host only; 5xx retries, 4xx does not", async () => {
  const seen: Array<[string, string | undefined]> = [];
  const fake = (async (url: string, init: RequestInit) => {
    const h = init.headers as Record<string, string>;
    seen.push([url, h.authorization]);
    if (url.startsWith("https://hub.test/")) return new Response(null, { status: 302, headers: { location: url.includes("/resolve/") ? "/api/resolve-cache/x" : "https://cdn.test/blob?sig=1" } });
    return new Response("ok", { status: 200 });
  }) as unknown as typeof fetch;
  const ctx = { source: "hub", repo: "o/n", revision: "main", authHint: "set HF_TOKEN", hasToken: true };
  const r = await fetchFollow("https://hub.test/o/n/resolve/main/f", { authorization: "Bearer t" }, undefined, ctx, fake);
  assert.equal(await r.res.text(), "ok");
  assert.deepEqual(seen, [
    ["https://hub.test/o/n/resolve/main/f", "Bearer t"],
    ["https://hub.test/api/resolve-cache/x", "Bearer t"],
    ["https://cdn.test/blob?sig=1", undefined],
  ]);

  let n = 0;
  const waits: number[] = [];
  assert.equal(await withRetry(async () => { if (++n < 3) throw new RetryableError("503"); return n; }, { backoffMs: 1, onRetry: (_, w) => waits.push(w) }), 3);
  assert.deepEqual(waits, [1, 2], "backoff doubles");
  n = 0;
  await assert.rejects(withRetry(async () => { n++; throw new XverseError("not_found", "404"); }, { backoffMs: 1 }), /404/);
  assert.equal(n, 1);
  await assert.rejects(withRetry(async () => { throw new RetryableError("reset"); }, { retries: 2, backoffMs: 1 }), /reset; gave up after 3 tries/);
  // drops with progress in between do not use up the tries: 10 drops, 2 retries allowed, each drop after new bytes
  let bytes = 0, calls = 0;
  assert.equal(await withRetry(async () => { calls++; bytes += 100; if (calls <= 10) throw new RetryableError("cut"); return bytes; },
    { retries: 2, backoffMs: 1, progress: () => bytes }), 1100);
  calls = 0;
  await assert.rejects(withRetry(async () => { calls++; throw new RetryableError("cut"); }, { retries: 2, backoffMs: 1, progress: () => 0 }), /gave up after 3 tries/);
});

test("the environment is read like huggingface_hub: HF_HUB_CACHE > HF_HOME/hub > XDG/~, HF_TOKEN > token file", () => {
  const home = mkdtempSync(join(tmpdir(), "xverse-hfhome-"));
  try {
    assert.equal(hubEnv({}).cacheDir, join(homedir(), ".cache", "huggingface", "hub"));
    assert.equal(hubEnv({ XDG_CACHE_HOME: "/x" }).cacheDir, join("/x", "huggingface", "hub"));
    assert.equal(hubEnv({ HF_HOME: home }).cacheDir, join(home, "hub"));
    assert.equal(hubEnv({ HF_HOME: home, HF_HUB_CACHE: "/c" }).cacheDir, "/c");
    assert.equal(hubEnv({ HF_HOME: home }).token, undefined);
    writeFileSync(join(home, "token"), "hf_fromfile\n");
    assert.equal(hubEnv({ HF_HOME: home }).token, "hf_fromfile");
    assert.equal(hubEnv({ HF_HOME: home, HF_TOKEN: "hf_env" }).token, "hf_env");
    mkdirSync(join(home, "elsewhere"));
    writeFileSync(join(home, "elsewhere", "tok"), "hf_path");
    assert.equal(hubEnv({ HF_HOME: home, HF_TOKEN_PATH: join(home, "elsewhere", "tok") }).token, "hf_path");
    assert.equal(hubEnv({ HF_ENDPOINT: "https://hf-mirror.com" }).hfEndpoint, "https://hf-mirror.com");
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("listings: LFS size and sha256 from blobs=true; unsafe paths and names are refused before anything is written", () => {
  const l = parseHfListing("o/n", "main", { sha: "c".repeat(40), siblings: [
    { rfilename: "a.json", size: 10, blobId: "b".repeat(40) },
    { rfilename: "w.safetensors", size: 134, blobId: "d".repeat(40), lfs: { sha256: "e".repeat(64), size: 5_000_000_000, pointerSize: 134 } },
  ] }, "hub");
  assert.deepEqual(l.files, [
    { path: "a.json", size: 10, etag: "b".repeat(40), gitSha1: "b".repeat(40), lfs: false },
    { path: "w.safetensors", size: 5_000_000_000, etag: "e".repeat(64), sha256: "e".repeat(64), lfs: true },
  ]);
  assert.throws(() => parseHfListing("o/n", "main", { sha: "c", siblings: [{ rfilename: "x" }] }, "hub"), /no size for x \(it is asked with blobs=true\)/);
  assert.throws(() => parseModelScopeListing("o/n", "master", { Code: 200, Data: { Files: [{ Path: "x", Type: "blob", Size: 1 }] } }, "ms"), /x has no Sha256/);
  const cache = new RepoCache("/tmp/c", "o/n");
  assert.throws(() => cache.linkSnapshot("c".repeat(40), "../../../etc/passwd", "e".repeat(64)), /not a safe relative path/);
  assert.throws(() => cache.blobPath("../x"), /cannot name a cache file/);
  assert.throws(() => new RepoCache("/tmp/c", "../../x"), /not a repository id/);
});

test("the progress line: one line redrawn in place on a terminal with bytes, %, rate, ETA and files; nothing on a pipe", () => {
  const out: string[] = [];
  const tty = { isTTY: true, write: (s: string) => { out.push(s); return true; } } as unknown as NodeJS.WriteStream;
  const draw = pullProgress("pull o/n", tty)!;
  draw({ done: 0, total: 8e9, filesDone: 0, files: 3, transferred: 0 });
  assert.match(out[0], /^\r\x1b\[Kpull o\/n 0 B\/8\.0 GB 0 % 0 B\/s ETA -- · 0\/3 files$/);
  draw({ done: 8e9, total: 8e9, filesDone: 3, files: 3, transferred: 8e9 });
  assert.match(out[1], /^\r\x1b\[Kpull o\/n 8\.0 GB\/8\.0 GB 100 % [\d.]+ [kMGT]?B\/s ETA 0s · 3\/3 files$/);
  assert.equal(out[2], "\n", "the finished line stays");
  assert.equal(pullProgress("x", { isTTY: false } as NodeJS.WriteStream), undefined);
  assert.equal(fmtDuration(59.2), "60s");
  assert.equal(fmtDuration(125), "2m05s");
  assert.equal(fmtDuration(3 * 3600 + 7 * 60), "3h07m");
});
