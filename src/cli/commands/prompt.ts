/** `xverse prompt`: print the exact prompt (text and ids) a chat model would see for a messages file. */
import { buildPrompt } from "../../chat/prompt.js";
import { loadChatContext, parseNow, readMessagesFile, readToolsFile } from "../../chat/files.js";
import { XverseError } from "../../errors.js";
import { defaultModelDir } from "../../model/embedded.js";
import { numberFlag, parseFlags, type Command } from "../command.js";
import { resolveModelFlag } from "../model-flags.js";

export const command: Command = {
  summary: "print the exact chat prompt (text + ids) for a messages file",
  help: `Usage: xverse prompt --messages FILE.json [--model DIR] [--format v1|v2|template] [--tools FILE.json]

Builds the prompt a chat model sees for a conversation and prints it as one JSON line:
  {"text": "...", "ids": [...], "format": "v2", "budget": 6144, "truncated": false}
Only the tokenizer and config files are read, never the weights. Use it to debug prompt formats.

Options:
  --messages FILE     JSON array of {"role": "system"|"user"|"assistant"|"exec", "content": "..."}
                      (or {"messages": [...], "tools": [...]}); "-" reads stdin
  -m, --model PATH    model directory or .gguf file (default: the embedded stories260K model), or
                      ORG/NAME[@REV][:TAG] from the Hugging Face cache (see xverse pull; --pull downloads it)
  --format F          v1 | v2 | template (default: config.json's chat_format, else the tokenizer_config
                      chat_template, else v2). v1 has no system/exec roles.
  --tools FILE        tools as OpenAI "tools" JSON or XVERSE plugins; the plugin block is put in front
                      of the first user message
  --now TIME          the time the plugin block states, e.g. "2007-03-09 07:02:15" (default: now)
  --max-new-tokens N  the reply room the token budget keeps free (default: generation_config, else 2048)
  --system TEXT       put a system message first (v2 / template)

Example:
  xverse prompt --model ./XVERSE-13B-Chat --messages chat.json --format v1`,
  async run(argv) {
    const { values: v } = parseFlags(argv, {
      messages: { type: "string" },
      model: { type: "string", short: "m" },
      pull: { type: "boolean" },
      source: { type: "string" },
      format: { type: "string" },
      tools: { type: "string" },
      now: { type: "string" },
      "max-new-tokens": { type: "string" },
      system: { type: "string" },
    }, false);
    if (typeof v.messages !== "string") throw new XverseError("bad_flag", "--messages FILE.json is required (see --help)");
    const ctx = loadChatContext((await resolveModelFlag(v)) ?? defaultModelDir());
    const file = readMessagesFile(v.messages);
    let messages = file.messages;
    if (typeof v.system === "string" && messages[0]?.role !== "system") messages = [{ role: "system", content: v.system }, ...messages];
    const p = buildPrompt(ctx.tokenizer, messages, {
      format: typeof v.format === "string" ? v.format : undefined,
      config: ctx.config,
      generationConfig: ctx.generationConfig,
      settings: ctx.settings,
      maxNewTokens: numberFlag(v["max-new-tokens"] as string | undefined, "--max-new-tokens", { int: true, min: 0 }),
      tools: typeof v.tools === "string" ? readToolsFile(v.tools) : file.tools,
      now: typeof v.now === "string" ? parseNow(v.now) : undefined,
    });
    process.stdout.write(JSON.stringify({ text: p.text, ids: p.ids, format: p.format, budget: p.budget, truncated: p.truncated }) + "\n");
    return 0;
  },
};
