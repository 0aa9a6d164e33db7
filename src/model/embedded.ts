/** The embedded default model (stories260K, MIT), shipped in the package so the CLI works right after install. */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Package root: dist/src/model/embedded.js → ../../.. */
export function packageRoot(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
}

export function defaultModelDir(): string {
  return join(packageRoot(), "models", "stories260K");
}
