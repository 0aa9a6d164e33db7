import { readFileSync } from "node:fs";
import { parseFlags, numberFlag, type Command } from "../command.js";
import { MODEL_FLAGS, MODEL_FLAGS_HELP, loadOptionsFromFlags, resolveModelFlag } from "../model-flags.js";
import { loadModel } from "../../model/load.js";
import { XverseError } from "../../errors.js";
import { perplexity } from "../../eval/perplexity.js";

const help = `Usage: xverse perplexity [options] FILE

Perplexity of a UTF-8 text file with a sliding window (Hugging Face's strided method): windows of
--context tokens start every --stride tokens and each scores only the tokens no earlier window scored,
so every token is predicted once, with up to context − stride tokens of left context.

Options:
  --context N              window length in tokens (default: the model's max_position_embeddings)
  --stride S               window step (default: --context, i.e. disjoint windows; smaller = more context
                           per token, more compute)
  --no-bos                 do not let the tokenizer add BOS
  --json                   print the result as JSON
  --quiet                  no progress on stderr

${MODEL_FLAGS_HELP}

Example:
  xverse perplexity --model ./XVERSE-7B --context 2048 --stride 512 wiki.test.raw`;

export const command: Command = {
  summary: "sliding-window perplexity of a text file",
  help,
  async run(argv) {
    const { values: v, positionals } = parseFlags(argv, {
      ...MODEL_FLAGS,
      context: { type: "string" },
      stride: { type: "string" },
      "no-bos": { type: "boolean" },
      json: { type: "boolean" },
      quiet: { type: "boolean" },
    });
    if (positionals.length !== 1) throw new XverseError("bad_flag", `give exactly one FILE argument, got ${positionals.length} (see --help)`);
    const file = positionals[0]!;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new XverseError("not_found", `cannot read ${file}: ${(e as Error).message}`);
    }
    const { model, tokenizer } = await loadModel(await resolveModelFlag(v), loadOptionsFromFlags(v));
    const ids = tokenizer.encode(text, { addSpecialTokens: !v["no-bos"] }).ids;
    const context = numberFlag(v.context as string | undefined, "--context", { int: true, min: 2 }) ?? Math.min(model.ctxSize, Math.max(2, ids.length));
    const stride = numberFlag(v.stride as string | undefined, "--stride", { int: true, min: 1 });
    const t0 = performance.now();
    const r = await perplexity(model, ids, {
      context, stride,
      onProgress: v.quiet ? undefined : (done, total) => process.stderr.write(`\rscored ${done}/${total} tokens`),
    });
    if (!v.quiet) process.stderr.write(`\r\x1b[K${r.scored} tokens scored in ${r.windows} window(s), ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    if (v.json) process.stdout.write(JSON.stringify(r) + "\n");
    else process.stdout.write(`perplexity ${r.perplexity.toFixed(4)} (mean NLL ${r.meanNll.toFixed(4)} nats over ${r.scored} tokens; context ${r.context}, stride ${r.stride})\n`);
  },
};
