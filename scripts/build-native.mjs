#!/usr/bin/env node
// Builds the native kernels (native/binding.gyp) with the node-gyp that ships with npm. Runs as the package's
// `install` script, so it must never fail `npm ci`: on any error it prints one warning and exits 0, and the
// library falls back to the TypeScript backend at run time.
//
// Nothing is downloaded: node-gyp needs the Node headers, found through npm's `nodedir` setting or, when run by
// hand, next to this node binary (<prefix>/include/node). Set XVERSE_SKIP_NATIVE=1 to skip the build.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");

function warn(reason) {
  console.warn(`xverse-ts: native kernels not built (${reason}); the TypeScript backend will be used.`);
  process.exit(0);
}

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const prefix = dirname(dirname(process.execPath));
  candidates.push(join(prefix, "lib", "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  candidates.push(join(dirname(process.execPath), "node_modules", "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"));
  try {
    candidates.push(createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js"));
  } catch {
    // not installed locally: fine
  }
  return candidates.find((p) => existsSync(p));
}

if (process.env.XVERSE_SKIP_NATIVE === "1") process.exit(0);
if (!existsSync(join(nativeDir, "binding.gyp"))) warn("native/binding.gyp is missing");
const gyp = findNodeGyp();
if (!gyp) warn("node-gyp not found next to npm");

const args = [gyp, "rebuild", "--directory", nativeDir];
// Outside npm, tell node-gyp where the headers of this node live, so it does not try to download them.
const prefix = dirname(dirname(process.execPath));
if (!process.env.npm_config_nodedir && existsSync(join(prefix, "include", "node", "node_api.h"))) {
  args.push(`--nodedir=${prefix}`);
}
// Seven translation units: compile them in parallel (node-gyp's default is one at a time).
args.push(`--jobs=${process.env.XVERSE_NATIVE_JOBS ?? Math.min(4, availableParallelism())}`);

const quiet = process.env.XVERSE_NATIVE_VERBOSE !== "1";
const r = spawnSync(process.execPath, args, { cwd: nativeDir, stdio: quiet ? "pipe" : "inherit", encoding: "utf8" });
if (r.error) warn(r.error.message);
if (r.status !== 0) {
  if (quiet) {
    // The first compiler error (if any) says more than node-gyp's stack; keep it to a few lines.
    const lines = `${r.stdout ?? ""}${r.stderr ?? ""}`.split("\n");
    const errors = lines.filter((l) => /error/i.test(l) && !/^gyp ERR!/.test(l)).slice(0, 3);
    if (errors.length) console.warn(errors.join("\n"));
  }
  warn(`node-gyp exited with ${r.status}`);
}
if (!existsSync(join(nativeDir, "build", "Release", "xverse_native.node"))) warn("the build produced no .node file");
