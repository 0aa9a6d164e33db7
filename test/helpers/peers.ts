/**
 * Third-party oracles live in peers/ (their own package.json), installed on first use so that the project's
 * own `npm ci` stays small. Tests import them through here.
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const peersDir = join(repoRoot, "peers");
let ensured = false;

export function ensurePeers(): void {
  if (ensured) return;
  execFileSync(process.execPath, [join(repoRoot, "scripts", "ensure-peers.mjs")], { stdio: ["ignore", "inherit", "inherit"] });
  ensured = true;
}

/** require() a peer package from peers/node_modules. */
export function requirePeer<T = any>(name: string): T {
  ensurePeers();
  return createRequire(join(peersDir, "package.json"))(name) as T;
}

/** import() a peer package (ESM) from peers/node_modules. */
export async function importPeer<T = any>(name: string): Promise<T> {
  ensurePeers();
  const resolved = createRequire(join(peersDir, "package.json")).resolve(name);
  return (await import(resolved)) as T;
}

/** A fixture path: test/fixtures/... */
export function fixture(...parts: string[]): string {
  return join(repoRoot, "test", "fixtures", ...parts);
}
