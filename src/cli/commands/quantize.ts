import { resolve } from "node:path";
import { XverseError } from "../../errors.js";
import { openCheckpoint } from "../../io/checkpoint.js";
import { quantizeCheckpoint } from "../../quant/convert.js";
import { numberFlag, parseFlags, type Command } from "../command.js";
import { progressBar } from "../progress.js";
import { resolveModelFlag } from "../model-flags.js";

const help = `Usage: xverse quantize --model DIR --bits 8|4 [--group-size N] --out DIR

Writes a weight-only quantized copy of a float (f32 / bf16 / f16) XVERSE checkpoint.
The seven projections of every layer (q/k/v/o, gate/up/down) become int8 or int4 with one f32 scale per
output row — XVERSE's own scheme — or, with --group-size, int4 with one scale per N input columns
(more accurate; 32, 64 or 128). Embeddings, norms and lm_head are kept as they are.

Output: DIR/model.safetensors (\`P.weight\` int8 + \`P.weight_scale\` f32), config.json with quantization_bit
(and quantization_group_size), and the tokenizer / generation files. Written to a temp directory and renamed
when complete: nothing half-written is left on error. Load it with any command's --model DIR.

Options:
  --model DIR        the float checkpoint (safetensors or .bin shards + config.json), or ORG/NAME
                     from the Hugging Face cache (see xverse pull; --pull downloads it first)
  --bits 8|4         integer width
  --group-size N     int4 only: one scale per N columns (default: one scale per row)
  --out DIR          the new directory (must not exist, or be empty)
  --quiet            no progress bar`;


export const command: Command = {
  summary: "write an int8 / int4 quantized copy of a model directory",
  help,
  async run(argv) {
    const { values } = parseFlags(argv, {
      model: { type: "string" },
      pull: { type: "boolean" },
      source: { type: "string" },
      bits: { type: "string" },
      "group-size": { type: "string" },
      out: { type: "string" },
      quiet: { type: "boolean" },
    }, false);
    const model = await resolveModelFlag(values);
    const out = values.out as string | undefined;
    if (!model) throw new XverseError("bad_flag", "--model DIR is required (the float checkpoint to quantize)");
    if (!out) throw new XverseError("bad_flag", "--out DIR is required (where the quantized model goes)");
    const bits = numberFlag(values.bits as string | undefined, "--bits", { int: true });
    if (bits !== 4 && bits !== 8) throw new XverseError("bad_flag", `--bits must be 8 or 4${bits === undefined ? " (it is required)" : `, got ${bits}`}`);
    const groupSize = numberFlag(values["group-size"] as string | undefined, "--group-size", { int: true, min: 2 }) ?? 0;
    if (resolve(model) === resolve(out)) throw new XverseError("bad_flag", "--out must be a new directory, not the --model directory");

    const source = openCheckpoint(model);
    try {
      const r = quantizeCheckpoint({
        source, modelDir: model, outDir: out, bits, groupSize, onProgress: progressBar(values.quiet === true),
      });
      const scheme = bits === 8 ? "int8 per row" : groupSize ? `int4, group ${groupSize}` : "int4 per row";
      process.stderr.write(`quantized ${r.quantized} projections (${scheme}), kept ${r.kept} tensors; ` +
        `${(r.bytes / 2 ** 20).toFixed(1)} MiB → ${r.outDir}\n`);
    } finally {
      source.close();
    }
  },
};
