/**
 * `xverse <command> …`: finds the command module in ./commands/<name>.js, runs it, and turns user errors
 * (XverseError) into one clear line on stderr and exit code 1 — never a stack dump.
 */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { XverseError } from "../errors.js";
import type { Command } from "./command.js";

const commandsDir = join(dirname(fileURLToPath(import.meta.url)), "commands");

function commandNames(): string[] {
  return readdirSync(commandsDir)
    .filter((f) => f.endsWith(".js"))
    .map((f) => f.slice(0, -3))
    .sort();
}

async function loadCommand(name: string): Promise<Command | null> {
  if (!/^[a-z][a-z0-9-]*$/.test(name) || !commandNames().includes(name)) return null;
  const mod = (await import(join(commandsDir, `${name}.js`))) as { command: Command };
  return mod.command;
}

async function usage(): Promise<string> {
  const lines = ["Usage: xverse <command> [options]", "", "Commands:"];
  for (const name of commandNames()) {
    const c = await loadCommand(name);
    if (c) lines.push(`  ${name.padEnd(12)} ${c.summary}`);
  }
  lines.push("", "Run `xverse <command> --help` for a command's options.");
  lines.push("With no --model, commands use the embedded stories260K model; --model takes a directory, a .gguf file,");
  lines.push("or a repository id ORG/NAME[:TAG] from the Hugging Face cache (`xverse pull ORG/NAME` fills it).");
  return lines.join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  // `xverse tokenize < big.txt | head`: the reader left, which is not an error worth a stack trace
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write((await usage()) + "\n");
    return name ? 0 : 1;
  }
  if (name === "--version" || name === "-v") {
    process.stdout.write("xverse-ts 0.1.0\n");
    return 0;
  }
  const cmd = await loadCommand(name);
  if (!cmd) {
    process.stderr.write(`xverse: unknown command "${name}"\n\n${await usage()}\n`);
    return 2;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(cmd.help.trimEnd() + "\n");
    return 0;
  }
  try {
    return (await cmd.run(rest)) ?? 0;
  } catch (e) {
    if (e instanceof XverseError) {
      process.stderr.write(`xverse ${name}: ${e.message}\n`);
      return 1;
    }
    // an operating-system error (ENOSPC, EROFS, EACCES…) a command did not word itself is still the user's to fix
    const code = (e as NodeJS.ErrnoException)?.code;
    if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) {
      process.stderr.write(`xverse ${name}: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  }
}
