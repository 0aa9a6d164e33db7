/** `xverse tokenize`: text on stdin → token ids as JSON. */
import { defaultModelDir } from "../../model/embedded.js";
import { XverseError } from "../../errors.js";
import { openTokenizer } from "../../tokenizer/auto.js";
import type { Command } from "../command.js";
import { parseFlags } from "../command.js";
import { readStdin } from "./detokenize.js";
import { resolveModelFlag } from "../model-flags.js";

export const command: Command = {
  summary: "text on stdin → token ids (JSON)",
  help: `Usage: xverse tokenize [--model PATH] [--jsonl] [--no-special] [--tokens]

Reads text on stdin and prints its token ids as a JSON array. The whole input is one text, trailing newline
included (use printf, or echo -n, to leave it out).

Options:
  -m, --model PATH   model directory (tokenizer.json), a tokenizer.json file or a .gguf file
                     (default: the embedded stories260K model), or ORG/NAME[@REV][:TAG] from the
                     Hugging Face cache (see xverse pull; --pull downloads it first)
  --jsonl            each input line is a JSON string; prints one JSON array of ids per line
  --no-special       do not add special tokens (e.g. BOS) around the text
  --tokens           print the token strings instead of the ids
  -h, --help         this text

Examples:
  printf 'Hello world' | xverse tokenize --model ./XVERSE-7B-Chat
  printf '"Hello"\\n"world"\\n' | xverse tokenize --jsonl`,
  async run(argv) {
    const { values } = parseFlags(argv, {
      model: { type: "string", short: "m" },
      pull: { type: "boolean" },
      source: { type: "string" },
      jsonl: { type: "boolean" },
      "no-special": { type: "boolean" },
      tokens: { type: "boolean" },
    }, false);
    const tok = openTokenizer((await resolveModelFlag(values)) ?? defaultModelDir());
    const addSpecialTokens = values["no-special"] !== true;
    const show = (text: string): string => {
      const e = tok.encode(text, { addSpecialTokens });
      return JSON.stringify(values.tokens ? e.tokens : e.ids);
    };
    const input = await readStdin();
    if (!values.jsonl) {
      process.stdout.write(show(input) + "\n");
      return 0;
    }
    const out: string[] = [];
    input.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      let text: unknown;
      try {
        text = JSON.parse(line);
      } catch {
        throw new XverseError("bad_input", `stdin line ${i + 1} is not valid JSON; with --jsonl each line must be a JSON string like "Hello"`);
      }
      if (typeof text !== "string") throw new XverseError("bad_input", `stdin line ${i + 1} is a JSON ${typeof text}, not a string; with --jsonl each line must be a JSON string`);
      out.push(show(text));
    });
    process.stdout.write(out.map((l) => l + "\n").join(""));
    return 0;
  },
};
