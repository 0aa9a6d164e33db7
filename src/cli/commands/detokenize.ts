/** `xverse detokenize`: token ids (JSON) on stdin → text. */
import { defaultModelDir } from "../../model/embedded.js";
import { XverseError } from "../../errors.js";
import { openTokenizer } from "../../tokenizer/auto.js";
import type { Command } from "../command.js";
import { parseFlags } from "../command.js";
import { resolveModelFlag } from "../model-flags.js";

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function parseIds(text: string, where: string, vocabSize: number): number[] {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new XverseError("bad_input", `${where} is not valid JSON; expected an array of token ids like [1, 2, 3]`);
  }
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0)) {
    throw new XverseError("bad_input", `${where} must be a JSON array of non-negative integer token ids, like [1, 2, 3]`);
  }
  const bad = (v as number[]).find((x) => x >= vocabSize);
  if (bad !== undefined) throw new XverseError("bad_input", `${where}: token id ${bad} is outside the vocabulary (size ${vocabSize})`);
  return v as number[];
}

export const command: Command = {
  summary: "token ids (JSON) on stdin → text",
  help: `Usage: xverse detokenize [--model PATH] [--jsonl] [--skip-special]

Reads a JSON array of token ids on stdin and prints the decoded text (no newline added).

Options:
  -m, --model PATH   model directory (tokenizer.json), a tokenizer.json file or a .gguf file
                     (default: the embedded stories260K model), or ORG/NAME[@REV][:TAG] from the
                     Hugging Face cache (see xverse pull; --pull downloads it first)
  --jsonl            each input line is a JSON array of ids; prints one JSON string per line
  --skip-special     leave special tokens (BOS, EOS, pad…) out of the text
  -h, --help         this text

Example:
  echo '[1, 403, 407]' | xverse detokenize`,
  async run(argv) {
    const { values } = parseFlags(argv, {
      model: { type: "string", short: "m" },
      pull: { type: "boolean" },
      source: { type: "string" },
      jsonl: { type: "boolean" },
      "skip-special": { type: "boolean" },
    }, false);
    const tok = openTokenizer((await resolveModelFlag(values)) ?? defaultModelDir());
    const skipSpecialTokens = values["skip-special"] === true;
    const input = await readStdin();
    if (!values.jsonl) {
      if (input.trim() === "") throw new XverseError("bad_input", "no input: pipe a JSON array of token ids into xverse detokenize, e.g. echo '[1, 2]' | xverse detokenize");
      process.stdout.write(tok.decode(parseIds(input, "stdin", tok.vocabSize), { skipSpecialTokens }));
      return 0;
    }
    const out: string[] = [];
    input.split("\n").forEach((line, i) => {
      if (line.trim() === "") return;
      out.push(JSON.stringify(tok.decode(parseIds(line, `stdin line ${i + 1}`, tok.vocabSize), { skipSpecialTokens })));
    });
    process.stdout.write(out.map((l) => l + "\n").join(""));
    return 0;
  },
};
