#!/usr/bin/env node
// Installs the third-party peers (peers/package.json: the Rust `tokenizers`, transformers.js tokenizers,
// node-llama-cpp) on first use, from the npm registry only, so the project's own `npm ci` stays small.
// Usage: node scripts/ensure-peers.mjs   (idempotent; prints nothing when already installed)
import { existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const peers = join(dirname(fileURLToPath(import.meta.url)), "..", "peers");
const wanted = ["tokenizers", "@huggingface/tokenizers", "node-llama-cpp", "@node-llama-cpp/linux-x64"];
const missing = wanted.filter((p) => !existsSync(join(peers, "node_modules", p, "package.json")));
if (missing.length) {
  process.stderr.write(`installing test/benchmark peers into peers/ (${missing.join(", ")}) …\n`);
  // --omit=optional keeps node-llama-cpp to its linux-x64 CPU build (83 MB instead of 732 MB);
  // --ignore-scripts: its postinstall would try to download llama.cpp sources.
  execFileSync("npm", ["ci", "--omit=optional", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: peers, stdio: ["ignore", "inherit", "inherit"] });
}
