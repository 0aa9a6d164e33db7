/**
 * What every benchmark script's command line shares: `--help` / `-h` prints the script's header comment (each
 * script's usage lives there, once) and exits; a failure ends the run with one line for a bad flag (node's
 * parseArgs errors) and the stack for anything else.
 */
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { XverseError } from "../src/errors.js";

/** Call first thing in a script with its import.meta.url: on --help / -h prints the header comment and exits 0. */
export function helpFromHeader(moduleUrl: string): void {
  if (!process.argv.slice(2).some((a) => a === "--help" || a === "-h")) return;
  // the TypeScript source (dist/bench/x.js → bench/x.ts): tsc drops a header that sits on an elided `import type`
  const file = fileURLToPath(moduleUrl);
  const ts = join(dirname(file), "..", "..", "bench", basename(file).replace(/\.js$/, ".ts"));
  const src = readFileSync(existsSync(ts) ? ts : file, "utf8");
  const doc = /^\s*\/\*\*([\s\S]*?)\*\//.exec(src);
  const text = doc ? doc[1].split("\n").map((l) => l.replace(/^\s*\* ?/, "")).join("\n").trim() : "(no usage text in this script)";
  console.log(text);
  process.exit(0);
}

/**
 * main()'s rejection: exit 2 with one line for a bad flag (see --help); exit 1 with the message for an XverseError
 * (it says what to do: a missing adapter, package or file), else with the stack.
 */
export function benchFailed(e: unknown): never {
  const err = e as Error & { code?: string };
  if (typeof err?.code === "string" && err.code.startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`${err.message.split(/\. To specify/)[0]} (--help lists the options)\n`);
    process.exit(2);
  }
  process.stderr.write(e instanceof XverseError ? `bench: ${err.message}\n` : `bench failed: ${err?.stack ?? e}\n`);
  process.exit(1);
}

/** A top-level parseArgs call (scripts that parse before main): a bad flag ends the run as benchFailed says. */
export function parseFlags<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    return benchFailed(e);
  }
}
