import { parseArgs, type ParseArgsConfig } from "node:util";

type Parsed = { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
import { XverseError } from "../errors.js";

/** One subcommand: src/cli/commands/<name>.ts exports `command`. */
export interface Command {
  /** One line for `xverse --help`. */
  summary: string;
  /** The full `xverse <name> --help` text. */
  help: string;
  /** Returns the exit code (undefined = 0). Throws XverseError for user errors. */
  run(argv: string[]): Promise<number | void>;
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** node:util parseArgs with its errors turned into one clear XverseError line. */
export function parseFlags(argv: string[], options: Options, allowPositionals = true): Parsed {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true }) as Parsed;
  } catch (e) {
    throw new XverseError("bad_flag", `${(e as Error).message.replace(/\. To specify.*$/s, "")} (see --help)`);
  }
}

/** A numeric flag value, checked. */
export function numberFlag(value: string | undefined, flag: string, opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || (opts.int && !Number.isInteger(n))) {
    throw new XverseError("bad_flag", `${flag} expects ${opts.int ? "an integer" : "a number"}, got "${value}"`);
  }
  if (opts.min !== undefined && n < opts.min) throw new XverseError("bad_flag", `${flag} must be ≥ ${opts.min}, got ${n}`);
  if (opts.max !== undefined && n > opts.max) throw new XverseError("bad_flag", `${flag} must be ≤ ${opts.max}, got ${n}`);
  return n;
}
