import { readFileSync } from "node:fs";
import { parseFlags, type Command } from "../command.js";
import { SAMPLING_FLAGS, SAMPLING_FLAGS_HELP, samplingFromFlags } from "../sampling-flags.js";
import { samplingOptions } from "../../generate/sampling.js";
import { MODEL_FLAGS, MODEL_FLAGS_HELP, loadOptionsFromFlags, resolveModelFlag } from "../model-flags.js";
import { loadModel } from "../../model/load.js";
import { generate, type GenerateOptions } from "../../generate/generate.js";
import { XverseError } from "../../errors.js";
import { constrainedJsonHook } from "../../chat/constrained.js";
import { remoteCompletionStream, type RemoteOptions } from "../../chat/remote.js";
import { assertSupportedSchema } from "../../chat/schema-check.js";
import type { JsonSchema } from "../../chat/schema.js";

/** --endpoint: the same output contract (stdout = exactly the continuation) from a server's /v1/completions. */
async function remoteGenerate(prompt: string, o: RemoteOptions, f: { echo: boolean; quiet: boolean }): Promise<void> {
  if (f.echo) process.stdout.write(prompt);
  const t0 = performance.now();
  let first = 0;
  const it = remoteCompletionStream(prompt, o);
  let r = await it.next();
  while (!r.done) {
    if (!first) first = performance.now();
    process.stdout.write(r.value);
    r = await it.next();
  }
  const end = performance.now();
  if (process.stdout.isTTY || f.echo) process.stdout.write("\n");
  if (!f.quiet) {
    const n = r.value.completionTokens;
    const rate = n > 1 && first ? ((n - 1) * 1000) / Math.max(end - first, 1e-3) : 0;
    process.stderr.write(`[${r.value.model} at ${o.endpoint}] first token ${((first || end) - t0).toFixed(0)} ms · prompt ${r.value.promptTokens} tok · ${n} new tok at ${rate.toFixed(1)} tok/s · finish: ${r.value.finishReason}\n`);
  }
}

/** --json-schema FILE → the schema, with errors that name the file. */
function readSchemaFile(path: string): JsonSchema {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new XverseError("bad_flag", `--json-schema: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let schema: unknown;
  try {
    schema = JSON.parse(text);
  } catch (e) {
    throw new XverseError("bad_flag", `--json-schema: ${path} is not JSON (${(e as Error).message})`);
  }
  assertSupportedSchema(schema, `--json-schema ${path}`);
  return schema as JsonSchema;
}

const help = `Usage: xverse generate [options] PROMPT

Continues PROMPT with a base (non-chat) model and streams the continuation to stdout.
stdout carries exactly the generated text (the prompt too with --echo); speed and
diagnostics go to stderr. Sampling defaults come from the model's generation_config.json.

${SAMPLING_FLAGS_HELP}

Other options:
  --stop TEXT              stop when TEXT appears (repeatable); TEXT itself is not printed
  --echo                   print the prompt before the continuation
  --no-bos                 do not let the tokenizer add BOS (models whose tokenizer adds it)
  --json                   the continuation is one JSON object (constrained decoding)
  --json-schema FILE       the continuation is a JSON value FILE's schema accepts (objects, arrays, enum,
                           const, anyOf, $ref/$defs, min/max items and lengths; others are refused)
  --quiet                  no statistics on stderr
  --endpoint URL           continue PROMPT on an OpenAI-compatible server (/v1/completions) instead of a
                           local model; --model then names the server's model (default: its first)
  --api-key KEY            bearer token for --endpoint (default: the XVERSE_API_KEY environment variable)

${MODEL_FLAGS_HELP}

Examples:
  xverse generate --greedy --max-new-tokens 40 "Once upon a time"
  xverse generate --json-schema person.schema.json --max-new-tokens 120 "A person:"`;

export const command: Command = {
  summary: "continue a prompt with a base model (streams to stdout)",
  help,
  async run(argv) {
    const { values: v, positionals } = parseFlags(argv, {
      ...MODEL_FLAGS,
      ...SAMPLING_FLAGS,
      stop: { type: "string", multiple: true },
      echo: { type: "boolean" },
      "no-bos": { type: "boolean" },
      json: { type: "boolean" },
      endpoint: { type: "string" },
      "api-key": { type: "string" },
      "json-schema": { type: "string" },
      quiet: { type: "boolean" },
    });
    if (positionals.length !== 1) throw new XverseError("bad_flag", `give exactly one PROMPT argument (quote it), got ${positionals.length} (see --help)`);
    const prompt = positionals[0];
    // a bad schema file is reported before the model loads
    const schema = v["json-schema"] !== undefined ? readSchemaFile(v["json-schema"] as string) : null;
    if (typeof v.endpoint === "string") {
      if (v.json || schema) throw new XverseError("bad_flag", "--json / --json-schema run locally only (with --endpoint, use the server's response_format through xverse chat or the API)");
      return remoteGenerate(prompt, {
        ...samplingFromFlags(v), endpoint: v.endpoint, apiKey: (v["api-key"] as string | undefined) ?? process.env.XVERSE_API_KEY,
        model: typeof v.model === "string" ? v.model : undefined, stopStrings: (v.stop as string[] | undefined) ?? [],
      }, { echo: v.echo === true, quiet: v.quiet === true });
    }
    const t0 = performance.now();
    const { model, tokenizer, generationConfig: gc } = await loadModel(await resolveModelFlag(v), loadOptionsFromFlags(v));
    const loadMs = performance.now() - t0;

    const ids = tokenizer.encode(prompt, { addSpecialTokens: !v["no-bos"] }).ids;
    if (ids.length === 0) throw new XverseError("bad_prompt", "the prompt encodes to no tokens: give some text");
    const req = samplingFromFlags(v);
    const opts: GenerateOptions = {
      maxNewTokens: req.maxNewTokens ?? gc.maxNewTokens,
      ...samplingOptions(req, gc),
      eosTokenIds: gc.eosTokenIds.length ? gc.eosTokenIds : undefined,
      stopStrings: (v.stop as string[] | undefined) ?? [],
    };
    if (v.json || v["json-schema"] !== undefined) {
      const maxNew = Math.min(opts.maxNewTokens ?? 256, model.ctxSize - ids.length);
      opts.logitsHook = constrainedJsonHook(tokenizer, schema, { eosTokenIds: opts.eosTokenIds ?? (tokenizer.eosId !== null ? [tokenizer.eosId] : []), maxNewTokens: maxNew });
      // the JSON stands alone on stdout: no space carried over from the prompt
      opts.continuation = false;
    }
    if (ids.length > model.ctxSize) {
      throw new XverseError("context_full", `the prompt has ${ids.length} tokens, more than the context size of ${model.ctxSize} (raise --ctx-size up to what the model supports)`);
    }
    if (!v.quiet) process.stderr.write(`[${model.describeKv()}]\n`);

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
        `[${model.backend.label ?? `${model.backend.name} backend`}] load ${loadMs.toFixed(0)} ms · prompt ${ids.length} tok at ${prefillRate.toFixed(1)} tok/s · ` +
          `${n} new tok at ${decodeRate.toFixed(1)} tok/s · finish: ${r.value.finishReason}\n`,
      );
    }
  },
};
