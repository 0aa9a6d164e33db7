import { parseFlags, numberFlag, type Command } from "../command.js";
import { MODEL_FLAGS, MODEL_FLAGS_HELP, loadOptionsFromFlags, modelPath } from "../model-flags.js";
import { loadModel } from "../../model/load.js";
import { generate, type GenerateOptions } from "../../generate/generate.js";
import { XverseError } from "../../errors.js";

const help = `Usage: xverse generate [options] PROMPT

Continues PROMPT with a base (non-chat) model and streams the continuation to stdout.
stdout carries exactly the generated text (the prompt too with --echo); speed and
diagnostics go to stderr. Sampling defaults come from the model's generation_config.json.

Generation options:
  --max-new-tokens N       tokens to generate at most (default: generation_config, else 256)
  --greedy                 argmax decoding (lowest id on ties); ignores temperature/top-k/top-p
  --temperature T          sampling temperature (> 0)
  --top-k K                keep the K most likely tokens (0 = off)
  --top-p P                nucleus sampling: keep the smallest set with probability ≥ P
  --repetition-penalty R   Hugging Face repetition penalty over prompt + generated ids (1 = off)
  --seed S                 RNG seed for reproducible sampling
  --stop TEXT              stop when TEXT appears (repeatable); TEXT itself is not printed
  --echo                   print the prompt before the continuation
  --no-bos                 do not let the tokenizer add BOS (models whose tokenizer adds it)
  --quiet                  no statistics on stderr

${MODEL_FLAGS_HELP}

Example:
  xverse generate --greedy --max-new-tokens 40 "Once upon a time"`;

export const command: Command = {
  summary: "continue a prompt with a base model (streams to stdout)",
  help,
  async run(argv) {
    const { values: v, positionals } = parseFlags(argv, {
      ...MODEL_FLAGS,
      "max-new-tokens": { type: "string" },
      greedy: { type: "boolean" },
      temperature: { type: "string" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      "repetition-penalty": { type: "string" },
      seed: { type: "string" },
      stop: { type: "string", multiple: true },
      echo: { type: "boolean" },
      "no-bos": { type: "boolean" },
      quiet: { type: "boolean" },
    });
    if (positionals.length !== 1) throw new XverseError("bad_flag", `give exactly one PROMPT argument (quote it), got ${positionals.length} (see --help)`);
    const prompt = positionals[0];
    const t0 = performance.now();
    const { model, tokenizer, generationConfig: gc } = await loadModel(modelPath(v), loadOptionsFromFlags(v));
    const loadMs = performance.now() - t0;

    const ids = tokenizer.encode(prompt, { addSpecialTokens: !v["no-bos"] }).ids;
    if (ids.length === 0) throw new XverseError("bad_prompt", "the prompt encodes to no tokens: give some text");
    const temperature = numberFlag(v.temperature as string | undefined, "--temperature", { min: 0 });
    const greedy = v.greedy === true || temperature === 0 || (!gc.doSample && temperature === undefined && v["top-k"] === undefined && v["top-p"] === undefined);
    const opts: GenerateOptions = {
      maxNewTokens: numberFlag(v["max-new-tokens"] as string | undefined, "--max-new-tokens", { int: true, min: 1 }) ?? gc.maxNewTokens,
      greedy,
      temperature: greedy ? undefined : temperature ?? gc.temperature,
      topK: greedy ? undefined : numberFlag(v["top-k"] as string | undefined, "--top-k", { int: true, min: 0 }) ?? gc.topK,
      topP: greedy ? undefined : numberFlag(v["top-p"] as string | undefined, "--top-p", { min: 0, max: 1 }) ?? gc.topP,
      repetitionPenalty: numberFlag(v["repetition-penalty"] as string | undefined, "--repetition-penalty", { min: 0.01 }) ?? gc.repetitionPenalty,
      seed: numberFlag(v.seed as string | undefined, "--seed", { int: true }),
      eosTokenIds: gc.eosTokenIds.length ? gc.eosTokenIds : undefined,
      stopStrings: (v.stop as string[] | undefined) ?? [],
    };
    const maxPos = model.config.maxPositionEmbeddings;
    if (ids.length + opts.maxNewTokens! > maxPos && !model.config.ropeScaling) {
      process.stderr.write(`warning: ${ids.length} prompt + ${opts.maxNewTokens} new tokens exceed the model's ${maxPos}-token context\n`);
    }

    if (v.echo) process.stdout.write(prompt);
    const t1 = performance.now();
    let first = 0, n = 0;
    const it = generate(model, tokenizer, ids, opts);
    let r = await it.next();
    while (!r.done) {
      if (n++ === 0) first = performance.now();
      process.stdout.write(r.value.text);
      r = await it.next();
    }
    const end = performance.now();
    if (process.stdout.isTTY || v.echo) process.stdout.write("\n");
    if (!v.quiet) {
      const decodeRate = n > 1 ? ((n - 1) * 1000) / (end - first) : 0;
      const prefillRate = (ids.length * 1000) / Math.max(first - t1, 1e-3);
      process.stderr.write(
        `[${model.backend.name} backend] load ${loadMs.toFixed(0)} ms · prompt ${ids.length} tok at ${prefillRate.toFixed(1)} tok/s · ` +
          `${n} new tok at ${decodeRate.toFixed(1)} tok/s · finish: ${r.value.finishReason}\n`,
      );
    }
  },
};
