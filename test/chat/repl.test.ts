/**
 * `xverse chat` driven for real: the built binary as a child process with piped stdin, on the embedded
 * stories260K model — two turns, /reset, Ctrl-C (SIGINT) during a reply, /save, /exit — asserting on the
 * transcript's structure (stderr notices in order, the saved history) and the exit code.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "../helpers/peers.js";

class Session {
  out = "";
  err = "";
  readonly exited: Promise<number | null>;
  private waiters: (() => void)[] = [];
  readonly child: ChildProcessWithoutNullStreams;

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [join(repoRoot, "bin", "xverse.js"), "chat", ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
    });
    this.child.stdout.setEncoding("utf8").on("data", (d: string) => { this.out += d; this.wake(); });
    this.child.stderr.setEncoding("utf8").on("data", (d: string) => { this.err += d; this.wake(); });
    this.exited = new Promise((r) => this.child.on("exit", (code) => { this.wake(); r(code); }));
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  async until(what: string, cond: () => boolean, ms = 20000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n--- stdout\n${this.out}\n--- stderr\n${this.err}`);
      await new Promise<void>((r) => { this.waiters.push(r); setTimeout(r, 100); });
    }
  }

  send(line: string): void {
    this.child.stdin.write(line + "\n");
  }

  count(re: RegExp): number {
    return (this.err.match(new RegExp(re.source, "g")) ?? []).length;
  }
}

const STATS = /\[\d+ tokens · [\d.]+ tok\/s · prompt \d+ tokens, \d+ cached · (eos|length|stop|abort)\]/;

test("REPL: two turns, /reset, Ctrl-C during a reply, /save, /exit", async () => {
  const dir = mkdtempSync(join(tmpdir(), "xverse-chat-"));
  try {
    // the token delay keeps the third reply running long enough to be interrupted on a loaded machine
    const s = new Session(["--max-new-tokens", "60", "--seed", "3", "--backend", "ts"], { XVERSE_CHAT_TOKEN_DELAY_MS: "15" });
    await s.until("the banner", () => s.err.includes("/help for commands"));
    assert.match(s.err, /format v2/);

    s.send("Once upon a time there was a cat.");
    await s.until("reply 1", () => s.count(STATS) === 1);
    const reply1 = s.out;
    assert.ok(reply1.trim().length > 0 && reply1.endsWith("\n"), "a streamed reply ending with a newline");
    s.send("What did the cat do?");
    await s.until("reply 2", () => s.count(STATS) === 2);
    assert.ok(s.out.length > reply1.length);

    s.send("/reset");
    await s.until("reset notice", () => s.err.includes("[history cleared]"));

    const before = s.out.length;
    s.send("Tell me a long story about a dog.");
    await s.until("reply 3 to start", () => s.out.length > before);
    s.child.kill("SIGINT");
    await s.until("the interruption", () => s.err.includes("[interrupted]") && s.count(STATS) === 3);
    assert.match(s.err, /· abort\]/);

    const file = join(dir, "history.json");
    s.send(`/save ${file}`);
    await s.until("save notice", () => s.err.includes("[saved"));
    const saved = JSON.parse(readFileSync(file, "utf8"));
    // after /reset only the interrupted exchange is left: the user turn and the partial reply
    assert.equal(saved.length, 2);
    assert.deepEqual(saved[0], { role: "user", content: "Tell me a long story about a dog." });
    assert.equal(saved[1].role, "assistant");
    assert.ok(s.out.slice(before).startsWith(saved[1].content.slice(0, 5)));

    s.send("/exit");
    assert.equal(await s.exited, 0);
    // notices in order: two replies, reset, interrupted third reply, save
    const order = ["[history cleared]", "[interrupted]", "[saved"].map((n) => s.err.indexOf(n));
    assert.ok(order.every((i, k) => i > 0 && (k === 0 || i > order[k - 1])), s.err);
    assert.ok(!s.err.includes("internal error"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("REPL: piped input to EOF — multi-line input, /system, unknown commands, v1 refusing a system prompt", async () => {
  const dir = mkdtempSync(join(tmpdir(), "xverse-chat-"));
  try {
    const file = join(dir, "h.json");
    const s = new Session(["--max-new-tokens", "8", "--greedy", "--quiet"]);
    s.child.stdin.end(["first \\", "second", '"""', "a", "b", '"""', "/nope", "/system be brief", `/save ${file}`, ""].join("\n"));
    assert.equal(await s.exited, 0);
    assert.match(s.err, /\[unknown command \/nope: try \/help\]/);
    const saved = JSON.parse(readFileSync(file, "utf8"));
    assert.deepEqual(saved.map((m: { role: string }) => m.role), ["system", "user", "assistant", "user", "assistant"]);
    assert.equal(saved[1].content, "first \nsecond");
    assert.equal(saved[3].content, "a\nb");
    assert.ok(!/tokens ·/.test(s.err), "--quiet: no statistics");

    const v1 = new Session(["--format", "v1", "--system", "x", "--max-new-tokens", "4", "--quiet"]);
    v1.child.stdin.end("hello\n");
    assert.equal(await v1.exited, 0);
    assert.match(v1.err, /error: the v1 chat format supports only "user" and "assistant"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("REPL: Ctrl-C twice at an empty prompt exits", async () => {
  const s = new Session(["--quiet"]);
  await s.until("startup", () => s.child.pid !== undefined);
  // wait until the REPL is listening (model loaded): a /help answer proves it
  s.send("/help");
  await s.until("help", () => s.err.includes("/reset"));
  s.child.kill("SIGINT");
  await s.until("the warning", () => s.err.includes("[press Ctrl-C again to exit"));
  s.child.kill("SIGINT");
  assert.equal(await s.exited, 0);
});

/** util-linux `script` gives the REPL a real terminal (readline in raw mode: Ctrl-C arrives as a keypress). */
function hasScript(): boolean {
  try {
    return spawnSync("script", ["--version"], { encoding: "utf8" }).stdout.includes("util-linux");
  } catch {
    return false;
  }
}

test("REPL on a terminal: Ctrl-C stops the reply and returns to the prompt; twice at an empty prompt exits", { skip: !hasScript() && "needs util-linux script for a pseudo-terminal" }, async () => {
  const cmd = `${JSON.stringify(process.execPath)} ${JSON.stringify(join(repoRoot, "bin", "xverse.js"))} chat --max-new-tokens 80 --seed 2 --backend ts`;
  const child = spawn("script", ["-qfec", cmd, "/dev/null"], { cwd: repoRoot, env: { ...process.env, XVERSE_CHAT_TOKEN_DELAY_MS: "20" } });
  let out = "";
  const waiters: (() => void)[] = [];
  child.stdout.setEncoding("utf8").on("data", (d: string) => { out += d; waiters.splice(0).forEach((w) => w()); });
  const exited = new Promise<number | null>((r) => child.on("exit", r));
  const until = async (what: string, cond: () => boolean) => {
    const deadline = Date.now() + 20000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${out}`);
      await new Promise<void>((r) => { waiters.push(r); setTimeout(r, 100); });
    }
  };
  await until("the prompt", () => out.includes("> "));
  child.stdin.write("Once upon a time\r");
  const start = out.length;
  await until("the reply", () => /\n[^\n[]{3,}/.test(out.slice(start)));
  child.stdin.write("\x03");
  await until("the interruption", () => out.includes("[interrupted]") && /· abort\]/.test(out));
  await until("the prompt again", () => out.lastIndexOf("> ") > out.indexOf("[interrupted]"));
  child.stdin.write("\x03");
  await until("the exit warning", () => out.includes("[press Ctrl-C again to exit"));
  child.stdin.write("\x03");
  assert.equal(await exited, 0);
});
