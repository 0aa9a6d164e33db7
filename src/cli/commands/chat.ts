/**
 * `xverse chat`: a terminal chat REPL over chatStream(). Replies stream to stdout; everything else (banner,
 * tokens/s, notices, errors) goes to stderr, so `xverse chat < questions.txt > answers.txt` works with a pipe.
 * Ctrl-C stops the reply being written (AbortController), not the program; at an empty prompt a second
 * Ctrl-C exits.
 */
import { createInterface, type Interface } from "node:readline";
import { statSync } from "node:fs";
import { chatStream, type ChatOptions } from "../../chat/chat.js";
import { remoteChatStream, remoteModel, type RemoteOptions } from "../../chat/remote.js";
import { readToolsFile, writeJsonFile } from "../../chat/files.js";
import { loadChatSettings, NO_CHAT_SETTINGS } from "../../chat/prompt.js";
import type { ToolSpec } from "../../chat/tools.js";
import type { ChatMessage } from "../../chat/types.js";
import { XverseError } from "../../errors.js";
import { defaultModelDir } from "../../model/embedded.js";
import { loadModel, type LoadedModel } from "../../model/load.js";
import type { KvSequence } from "../../kv/sequence.js";
import { parseFlags, type Command } from "../command.js";
import { MODEL_FLAGS, MODEL_FLAGS_HELP, loadOptionsFromFlags, resolveModelFlag } from "../model-flags.js";
import { SAMPLING_FLAGS, samplingFromFlags } from "../sampling-flags.js";

const COMMANDS = `Commands:
  /reset          forget the conversation (the system prompt and tools stay)
  /system TEXT    set the system prompt (no TEXT: remove it); v2 and template formats only
  /tools FILE     enable function calling with tools from FILE (OpenAI "tools" or XVERSE plugins); /tools off
  /exec TEXT      send TEXT as a tool result (after a tool call, the next plain line is one anyway)
  /save FILE      write the conversation as JSON (readable by xverse prompt --messages)
  /exit           leave (also Ctrl-D, or Ctrl-C twice at an empty prompt)
Multi-line input: end a line with \\ to continue it, or put the text between two lines of """.
Start a message with // to send a line that begins with /.`;

const help = `Usage: xverse chat [--model DIR] [--format v1|v2|template] [--system TEXT] [--tools FILE] [options]
       xverse chat --endpoint URL [--api-key KEY] [--model NAME] [options]

Chats with a model in the terminal: the reply streams to stdout, tokens/s and notices go to stderr.
Reads stdin line by line, so it also works with piped input.

Chat options:
  --endpoint URL           chat with an OpenAI-compatible server (xverse serve, vLLM, llama.cpp) instead of
                           a local model; --model then names the server's model (default: its first)
  --api-key KEY            bearer token for --endpoint (default: the XVERSE_API_KEY environment variable)
  --format F               v1 | v2 | template (default: the model's chat_format, else its chat_template, else v2)
  --system TEXT            system prompt (v2 / template)
  --tools FILE             tools (OpenAI "tools" JSON or XVERSE plugins) for function calling
  --constrain              constrain tool calls to the tools' JSON schemas once the model starts one
  --max-new-tokens N       reply length limit (default: generation_config, else 2048; capped by the context)
  --greedy                 argmax decoding
  --temperature T, --top-k K, --top-p P, --repetition-penalty R, --seed S
                           sampling (defaults: the model's generation_config.json)
  --quiet                  no banner or statistics on stderr

${COMMANDS}

${MODEL_FLAGS_HELP}

Environment: XVERSE_CHAT_TOKEN_DELAY_MS slows the stream by that many ms per token (demos, tests).`;


class Repl {
  private history: ChatMessage[] = [];
  private tools: ToolSpec[] = [];
  private system: string | undefined;
  private awaitingExec = false;
  private busy: AbortController | null = null;
  private block: string[] | null = null;
  private continued: string[] = [];
  private queue: string[] = [];
  private pumping = false;
  private closed = false;
  private armedExit = false;
  private exited = false;
  private readonly quiet: boolean;
  private done!: (code: number) => void;
  /** Resolves with the exit code when the REPL ends. */
  readonly finished = new Promise<number>((r) => (this.done = r));
  private readonly rl: Interface;
  private readonly tty = process.stdin.isTTY === true;
  private readonly delayMs = Number(process.env.XVERSE_CHAT_TOKEN_DELAY_MS ?? 0) || 0;
  /** The conversation's keys and values, kept across turns: a turn computes only its new message (local only). */
  private readonly kv: KvSequence | null;

  constructor(
    /** The local model, or null with `remote`. */
    private readonly loaded: LoadedModel | null,
    private readonly base: ChatOptions,
    opts: { system?: string; tools: ToolSpec[]; quiet: boolean },
    /** --endpoint: the server that answers instead. */
    private readonly remote: RemoteOptions | null = null,
  ) {
    this.system = opts.system;
    this.tools = opts.tools;
    this.quiet = opts.quiet;
    this.kv = loaded ? loaded.model.createPool().sequence(loaded.model.ctxSize) : null;
    this.rl = createInterface({ input: process.stdin, output: this.tty ? process.stdout : undefined, terminal: this.tty });
    this.rl.on("line", (line) => {
      this.queue.push(line);
      void this.pump();
    });
    this.rl.on("close", () => {
      this.closed = true;
      void this.pump();
    });
    // readline owns Ctrl-C on a terminal; with piped stdin the signal comes to the process
    this.rl.on("SIGINT", this.interrupt);
    process.on("SIGINT", this.interrupt);
  }

  private note(s: string): void {
    process.stderr.write(`${s}\n`);
  }

  start(): void {
    this.showPrompt();
  }

  private showPrompt(): void {
    if (!this.tty) return;
    this.rl.setPrompt(this.block || this.continued.length ? "... " : this.awaitingExec ? "exec> " : "> ");
    this.rl.prompt();
  }

  private readonly interrupt = (): void => {
    if (this.busy) {
      this.busy.abort();
      return;
    }
    if (this.block || this.continued.length) {
      this.block = null;
      this.continued = [];
      this.note("[input cleared]");
    } else if (this.armedExit) {
      this.exit();
      return;
    } else {
      this.armedExit = true;
      this.note("[press Ctrl-C again to exit, or type /exit]");
    }
    this.showPrompt();
  };

  private exit(code = 0): void {
    if (this.exited) return;
    this.exited = true;
    this.busy?.abort();
    process.off("SIGINT", this.interrupt);
    this.rl.close();
    // let the process end even if stdin (a pipe) stays open
    if (!this.tty) process.stdin.destroy();
    this.done(code);
  }

  private async pump(): Promise<void> {
    if (this.pumping || this.exited) return;
    this.pumping = true;
    try {
      while (this.queue.length && !this.exited) {
        const line = this.queue.shift()!;
        this.armedExit = false;
        const text = this.collect(line);
        if (text !== null) await this.handle(text);
        if (!this.exited) this.showPrompt();
      }
    } catch (e) {
      // a bug, not a user error: report it like bin/xverse.js does and end
      process.stderr.write(`xverse: internal error: ${(e as Error)?.stack ?? e}\n`);
      this.exit(70);
    } finally {
      this.pumping = false;
    }
    if (this.closed && !this.queue.length) this.exit();
  }

  /** Multi-line assembly: returns the finished input, or null while more lines are needed. */
  private collect(line: string): string | null {
    if (this.block) {
      if (line.trim() === '"""') {
        const text = this.block.join("\n");
        this.block = null;
        return text;
      }
      this.block.push(line);
      return null;
    }
    if (!this.continued.length && line.trim() === '"""') {
      this.block = [];
      return null;
    }
    if (line.endsWith("\\")) {
      this.continued.push(line.slice(0, -1));
      return null;
    }
    const text = [...this.continued, line].join("\n");
    this.continued = [];
    return text;
  }

  private async handle(input: string): Promise<void> {
    if (input.startsWith("/") && !input.startsWith("//")) return this.command(input);
    const text = input.startsWith("//") ? input.slice(1) : input;
    if (!text.trim()) return;
    await this.turn(this.awaitingExec ? "exec" : "user", text);
  }

  private async command(input: string): Promise<void> {
    const [cmd, ...rest] = input.split(" ");
    const arg = rest.join(" ").trim();
    try {
      switch (cmd) {
        case "/exit":
        case "/quit":
          this.exit();
          return;
        case "/reset":
          this.history = [];
          this.awaitingExec = false;
          this.note("[history cleared]");
          return;
        case "/system":
          this.system = arg || undefined;
          this.note(arg ? "[system prompt set]" : "[system prompt removed]");
          return;
        case "/tools":
          if (!arg || arg === "off") {
            this.tools = [];
            this.note("[tools off]");
          } else {
            this.tools = readToolsFile(arg);
            this.note(`[${this.tools.length} tool(s): ${this.tools.map((t) => t.name).join(", ")}]`);
          }
          return;
        case "/exec":
          if (!arg) throw new XverseError("bad_input", "/exec needs the tool's result: /exec TEXT");
          await this.turn("exec", arg);
          return;
        case "/save": {
          if (!arg) throw new XverseError("bad_input", "/save needs a file name: /save FILE");
          const msgs = this.system !== undefined ? [{ role: "system", content: this.system }, ...this.history] : this.history;
          writeJsonFile(arg, msgs);
          this.note(`[saved ${msgs.length} message(s) to ${arg}]`);
          return;
        }
        case "/help":
          this.note(COMMANDS);
          return;
        default:
          this.note(`[unknown command ${cmd}: try /help]`);
      }
    } catch (e) {
      if (!(e instanceof XverseError)) throw e;
      this.note(`error: ${e.message}`);
    }
  }

  private async turn(role: "user" | "exec", content: string): Promise<void> {
    if (this.remote) return this.remoteTurn(role, content);
    const { model, tokenizer } = this.loaded!;
    this.history.push({ role, content });
    this.awaitingExec = false;
    const ac = new AbortController();
    this.busy = ac;
    let promptTokens = 0;
    const printed = { any: false };
    try {
      const it = chatStream(model, tokenizer, this.history, {
        ...this.base,
        system: this.system,
        tools: this.tools.length ? this.tools : undefined,
        now: new Date(),
        signal: ac.signal,
        onPrompt: (p) => (promptTokens = p.ids.length),
        cache: this.kv ?? undefined,
      });
      const { res, first, end } = await this.printStream(it, printed);
      this.history.push({ role: "assistant", content: res.text });
      if (res.finishReason === "abort") this.note("[interrupted]");
      if (res.reply.call) {
        this.note(`[tool call] ${res.reply.call.name} ${JSON.stringify(res.reply.call.arguments)}`);
        this.note("[type the tool's result: your next line is sent as an exec turn]");
        this.awaitingExec = true;
      } else if (res.reply.error) {
        this.note(`[${res.reply.error}]`);
      }
      if (!this.quiet) {
        const n = res.ids.length;
        const rate = n > 1 && first ? ((n - 1) * 1000) / Math.max(end - first, 1e-3) : 0;
        this.note(`[${n} tokens · ${rate.toFixed(1)} tok/s · prompt ${promptTokens} tokens, ${res.cachedTokens} cached · ${res.finishReason}]`);
      }
    } catch (e) {
      if (!(e instanceof XverseError)) throw e;
      if (printed.any) process.stdout.write("\n");
      // the turn never happened: take the message back out
      this.history.pop();
      this.note(`error: ${e.message}`);
    } finally {
      this.busy = null;
    }
  }

  /**
   * Prints a reply stream as it arrives (with --delay between pieces) and a newline after it; returns the stream's
   * result and when its first and last text came. `printed.any` says whether anything reached the terminal.
   */
  private async printStream<R>(it: AsyncGenerator<string, R>, printed: { any: boolean }): Promise<{ res: R; first: number; end: number }> {
    let first = 0;
    let r = await it.next();
    while (!r.done) {
      if (!first) first = performance.now();
      if (r.value) printed.any = true;
      process.stdout.write(r.value);
      if (this.delayMs) await new Promise((res) => setTimeout(res, this.delayMs));
      r = await it.next();
    }
    const end = performance.now();
    process.stdout.write("\n");
    return { res: r.value, first, end };
  }

  /** One turn against --endpoint: the same REPL and history; the reply streams from the server. */
  private async remoteTurn(role: "user" | "exec", content: string): Promise<void> {
    this.history.push({ role, content });
    this.awaitingExec = false;
    const ac = new AbortController();
    this.busy = ac;
    const printed = { any: false };
    const t0 = performance.now();
    try {
      const it = remoteChatStream(this.history, { ...this.remote!, system: this.system, tools: this.tools, signal: ac.signal });
      const { res, first, end } = await this.printStream(it, printed);
      this.history.push({ role: "assistant", content: res.text });
      if (res.finishReason === "abort") this.note("[interrupted]");
      if (res.call) {
        this.note(`[tool call] ${res.call.name} ${JSON.stringify(res.call.arguments)}`);
        this.note("[type the tool's result: your next line is sent as an exec turn]");
        this.awaitingExec = true;
      }
      if (!this.quiet) {
        const n = res.completionTokens;
        const rate = n > 1 && first ? ((n - 1) * 1000) / Math.max(end - first, 1e-3) : 0;
        this.note(`[${n} tokens · ${rate.toFixed(1)} tok/s · first token ${((first || end) - t0).toFixed(0)} ms · prompt ${res.promptTokens} tokens · ${res.finishReason} · ${res.model}]`);
      }
    } catch (e) {
      if (!(e instanceof XverseError)) throw e;
      if (printed.any) process.stdout.write("\n");
      this.history.pop();
      this.note(`error: ${e.message}`);
    } finally {
      this.busy = null;
    }
  }
}

export const command: Command = {
  summary: "chat with a model in the terminal (streaming, history, /commands, Ctrl-C stops a reply)",
  help,
  async run(argv) {
    const { values: v } = parseFlags(argv, {
      ...MODEL_FLAGS,
      endpoint: { type: "string" },
      "api-key": { type: "string" },
      format: { type: "string" },
      system: { type: "string" },
      tools: { type: "string" },
      constrain: { type: "boolean" },
      ...SAMPLING_FLAGS,
      quiet: { type: "boolean" },
    }, false);
    const opts = samplingFromFlags(v);
    const tools = typeof v.tools === "string" ? readToolsFile(v.tools) : [];
    if (typeof v.endpoint === "string") {
      const remote: RemoteOptions = {
        ...opts, endpoint: v.endpoint, apiKey: (v["api-key"] as string | undefined) ?? process.env.XVERSE_API_KEY,
        model: typeof v.model === "string" ? v.model : undefined,
      };
      remote.model = await remoteModel(remote);
      if (!v.quiet) process.stderr.write(`xverse chat · ${remote.model} at ${v.endpoint} · /help for commands\n`);
      const repl = new Repl(null, {}, { system: typeof v.system === "string" ? v.system : undefined, tools, quiet: v.quiet === true }, remote);
      repl.start();
      return repl.finished;
    }
    const path = (await resolveModelFlag(v)) ?? defaultModelDir();
    const t0 = performance.now();
    const loaded = await loadModel(path, loadOptionsFromFlags(v));
    const settings = statSync(path).isDirectory() ? loadChatSettings(path) : NO_CHAT_SETTINGS;
    const base: ChatOptions = {
      ...opts,
      format: typeof v.format === "string" ? v.format : undefined,
      generationConfig: loaded.generationConfig,
      settings,
      constrainToolCalls: v.constrain === true,
    };
    if (!v.quiet) {
      const fmt = base.format ?? loaded.model.config.chatFormat ?? (settings.chatTemplate ? "template" : "v2");
      process.stderr.write(`xverse chat · ${path} · format ${fmt} · loaded in ${(performance.now() - t0).toFixed(0)} ms · /help for commands\n[${loaded.model.describeKv()}]\n`);
    }
    const repl = new Repl(loaded, base, { system: typeof v.system === "string" ? v.system : undefined, tools, quiet: v.quiet === true });
    repl.start();
    return repl.finished;
  },
};
