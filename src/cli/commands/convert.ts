import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../config.js";
import { XverseError } from "../../errors.js";
import { exportGguf, type ExportResult, type ExportType } from "../../gguf/export.js";
import { exportGptqGguf } from "../../gguf/from-gptq.js";
import { detectGptq } from "../../io/gptq.js";
import { openCheckpoint } from "../../io/checkpoint.js";
import { defaultModelDir } from "../../model/embedded.js";
import { parseFlags, type Command } from "../command.js";
import { progressBar } from "../progress.js";
import { resolveModelFlag } from "../model-flags.js";

const help = `Usage: xverse convert [--model DIR] --to gguf [--type f32|f16|q8_0|q4_0|q4_k_m|q5_k_m|q6_k] --out FILE.gguf

Writes a float checkpoint (safetensors or torch .bin shards + config.json + tokenizer.json) as a GGUF file that
llama.cpp, Ollama and \`xverse generate --model FILE.gguf\` run.

XVERSE models are written with architecture "xverse" (untied output.weight), LLaMA ones as "llama"; q_proj and
k_proj rows are permuted to llama.cpp's adjacent-pair RoPE layout; the vocabulary is written as an SPM
("llama") tokenizer with scores from the BPE merge ranks. Norms and other 1-D tensors stay F32.
q8_0 / q4_0 apply to 2-D weights whose row length is a multiple of 32; other matrices are written as F16
(each one is listed). The K-quant mixtures follow llama.cpp: q4_k_m / q5_k_m write Q4_K / Q5_K, with Q6_K for
output.weight and for attn_v and ffn_down in the first and last eighth of the layers and every third layer
between; q6_k writes Q6_K everywhere. K blocks need rows of a multiple of 256 values; other rows fall back as
in llama.cpp (Q4_K → Q5_0, Q5_K → Q5_1, Q6_K → Q8_0; F16 if not a multiple of 32 either), each one listed. llama.cpp has no dynamic-NTK RoPE scaling: such a model is written with plain RoPE
and a warning. The file is written under a temp name and renamed when complete.

GPTQ and AWQ checkpoints (quantization_config / quantize_config.json) convert too. With --type q4_0 or q8_0, a
projection a GGUF block holds exactly is copied without a float round trip: symmetric int4 → Q4_0, int4 with
zero points → Q4_1 (when every −scale·zero is an f16), int4 / int8 → Q8_0 (when q − zero fits int8); that needs
group_size a multiple of 32 and no desc_act. Every other projection, and every projection for the other
types, is dequantized exactly and requantized to --type. A "note:" line says how many went which way.

Options:
  --model DIR        the float checkpoint (default: the embedded stories260K model), or ORG/NAME
                     from the Hugging Face cache (see xverse pull; --pull downloads it first)
  --to gguf          the output format (only gguf for now)
  --type T           f32, f16 (default), q8_0, q4_0, q4_k_m, q5_k_m or q6_k
  --arch A           force "xverse" or "llama" (default: from config.json's model_type)
  --tokenizer FILE   the tokenizer.json to take the vocabulary from (default: DIR/tokenizer.json)
  --out FILE         the .gguf file to write (replaced if it exists)
  --quiet            no progress bar`;

const TYPES: readonly ExportType[] = ["f32", "f16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k"];


export const command: Command = {
  summary: "write a checkpoint as GGUF (f32 / f16 / q8_0 / q4_0 / q4_k_m / q5_k_m / q6_k) for llama.cpp",
  help,
  async run(argv) {
    const { values } = parseFlags(argv, {
      model: { type: "string" },
      pull: { type: "boolean" },
      source: { type: "string" },
      to: { type: "string" },
      type: { type: "string" },
      arch: { type: "string" },
      tokenizer: { type: "string" },
      out: { type: "string" },
      quiet: { type: "boolean" },
    }, false);
    const model = (await resolveModelFlag(values)) ?? defaultModelDir();
    const to = values.to as string | undefined;
    const out = values.out as string | undefined;
    const type = ((values.type as string | undefined) ?? "f16").toLowerCase() as ExportType;
    const arch = values.arch as string | undefined;
    if (to !== "gguf") throw new XverseError("bad_flag", to === undefined ? "--to gguf is required" : `--to ${to} is not supported (only gguf)`);
    if (!out) throw new XverseError("bad_flag", "--out FILE.gguf is required");
    if (!TYPES.includes(type)) throw new XverseError("bad_flag", `--type must be one of ${TYPES.join(", ")}, got "${values.type}"`);
    if (arch !== undefined && arch !== "xverse" && arch !== "llama") throw new XverseError("bad_flag", `--arch must be xverse or llama, got "${arch}"`);
    if (model.endsWith(".gguf")) throw new XverseError("unsupported", `--model ${model}: converting GGUF to GGUF is not supported; give the original checkpoint directory`);
    const tokenizer = (values.tokenizer as string | undefined) ?? join(model, "tokenizer.json");
    if (!existsSync(tokenizer)) {
      throw new XverseError("not_found", values.tokenizer ? `--tokenizer ${tokenizer} does not exist` : `${model} has no tokenizer.json, which the GGUF vocabulary is built from (give one with --tokenizer FILE)`);
    }
    const config = loadConfig(model);
    if (config.quantizationBit !== 0) {
      throw new XverseError("unsupported", `${model} is an int${config.quantizationBit} checkpoint (quantization_bit ${config.quantizationBit}); convert the float checkpoint instead`);
    }
    // a typo like --out model.safetensors must not replace a checkpoint file
    if (!out.endsWith(".gguf")) throw new XverseError("bad_flag", `--out must name a .gguf file, got "${out}"`);

    const gptq = detectGptq(model);
    const source = openCheckpoint(model);
    try {
      const eo = { type, arch: arch as "xverse" | "llama" | undefined, onProgress: progressBar(values.quiet === true) };
      // GPTQ / AWQ: exact block copies where a GGUF type holds them, the rest requantized (gguf/from-gptq.ts)
      const r: ExportResult & { notes?: string[] } = gptq ? exportGptqGguf(source, gptq, config, tokenizer, out, eo) : exportGguf(source, config, tokenizer, out, eo);
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      for (const n of r.notes ?? []) process.stderr.write(`note: ${n}\n`);
      const counts: Record<string, number> = {};
      for (const t of Object.values(r.tensorTypes)) counts[t] = (counts[t] ?? 0) + 1;
      process.stderr.write(`wrote ${out}: arch ${r.arch}, ${Object.entries(counts).map(([t, n]) => `${n} ${t}`).join(", ")}\n`);
    } finally {
      source.close();
    }
  },
};
