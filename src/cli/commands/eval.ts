import { statSync } from "node:fs";
import { resolve, basename } from "node:path";
import { parseFlags, numberFlag, type Command } from "../command.js";
import { MODEL_FLAGS, MODEL_FLAGS_HELP, loadOptionsFromFlags, resolveModelFlag } from "../model-flags.js";
import { loadModel } from "../../model/load.js";
import { defaultModelDir } from "../../model/embedded.js";
import { loadTokenizer } from "../../tokenizer/load.js";
import { XverseError } from "../../errors.js";
import { TASKS, type TaskName } from "../../eval/data.js";
import { runEval, type EvalSettings } from "../../eval/harness.js";
import { LocalScorer, type Scorer } from "../../eval/scorer.js";
import { EndpointScorer } from "../../eval/endpoint.js";
import { resultsTable, subjectTable, writeReport } from "../../eval/report.js";
import { describeSandbox, sandboxLayers } from "../../eval/sandbox.js";

const help = `Usage: xverse eval (--model PATH | --endpoint URL) --data DIR [options]

Scores a model on MMLU, C-Eval, CMMLU (5-shot multiple choice, by the log-likelihood of each answer
letter), GSM8K (4-shot chain of thought, greedy, final-number match) and HumanEval (0-shot, greedy,
pass@1 in a sandbox), with the prompt formats of each benchmark's reference evaluation. Prints the
results table (the seed README's layout) and per-subject accuracy to stdout; progress goes to stderr.

Data (nothing is downloaded): DIR/mmlu/<subject>_{dev,test}.csv (header question,choice0..3,answer or the
original headerless files with letters; dev/ and test/ folders work too), DIR/ceval/<subject>_{dev,val}.csv
(C-Eval's test split has no answers: val is scored), DIR/cmmlu/<subject>_{dev,test}.csv or {dev,test}/<subject>.csv,
DIR/gsm8k/test.jsonl, DIR/humaneval/HumanEval.jsonl(.gz).

Options:
  --data DIR               the datasets folder (required)
  --tasks LIST             comma-separated: ${TASKS.join(",")} (default: mmlu,ceval,cmmlu,gsm8k)
  --shots N                few-shot examples for mmlu/ceval/cmmlu/gsm8k (default 5, 5, 5, 4)
  --limit N                at most N items per subject (multiple choice) or per task
  --out FILE               write the full JSON report (every item's prompt, scores, prediction, answer)
  --cache FILE             finished items, for resuming (default: FILE.cache.jsonl next to --out)
  --no-cache               do not read or write a cache
  --name NAME              row label in the results table (default: the model's folder or endpoint model)
  --quiet                  no progress bar
HumanEval:
  --allow-code-execution   required: HumanEval runs model-written Python. It runs in a child process with a
                           temp dir as cwd/HOME, a timeout (process-group kill), memory/CPU/process rlimits,
                           Python-level socket/subprocess/write guards and, where the OS allows (root or
                           user namespaces), network + PID namespaces, read-only /tmp and uid nobody.
  --timeout S              seconds per program (default 10)
  --memory MB              address-space limit per program (default 1024)
Endpoint (any OpenAI-compatible server: xverse serve, vLLM; llama.cpp's server for gsm8k/humaneval only):
  --endpoint URL           e.g. http://localhost:8000 (/v1 is added when missing)
  --api-key KEY            bearer token (default: $OPENAI_API_KEY)
  --endpoint-model NAME    the request's model field (default: the first of GET /v1/models)
  --concurrency N          requests in flight at once (default 8)
  --tokenizer PATH         send prompts as token ids split with this tokenizer (exact, as lm-eval does);
                           without it prompts go as text and the split comes from text_offset

${MODEL_FLAGS_HELP}

Example:
  xverse eval --model ./XVERSE-13B-2 --data ./evaldata --tasks mmlu,ceval --limit 20 --out results.json`;

export function parseTasks(s: string | undefined): TaskName[] {
  if (s === undefined) return ["mmlu", "ceval", "cmmlu", "gsm8k"];
  const tasks = s.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);
  for (const t of tasks) if (!(TASKS as readonly string[]).includes(t)) throw new XverseError("bad_flag", `--tasks: unknown task "${t}" (known: ${TASKS.join(", ")})`);
  if (tasks.length === 0) throw new XverseError("bad_flag", "--tasks is empty");
  return [...new Set(tasks)] as TaskName[];
}

export const command: Command = {
  summary: "evaluate on MMLU, C-Eval, CMMLU, GSM8K, HumanEval (in-process or via an OpenAI-compatible endpoint)",
  help,
  async run(argv) {
    const { values: v, positionals } = parseFlags(argv, {
      ...MODEL_FLAGS,
      data: { type: "string" },
      tasks: { type: "string" },
      shots: { type: "string" },
      limit: { type: "string" },
      out: { type: "string" },
      cache: { type: "string" },
      "no-cache": { type: "boolean" },
      name: { type: "string" },
      quiet: { type: "boolean" },
      "allow-code-execution": { type: "boolean" },
      timeout: { type: "string" },
      memory: { type: "string" },
      endpoint: { type: "string" },
      "api-key": { type: "string" },
      "endpoint-model": { type: "string" },
      tokenizer: { type: "string" },
      concurrency: { type: "string" },
    }, false);
    void positionals;
    if (typeof v.data !== "string") throw new XverseError("bad_flag", "--data DIR is required: the folder holding mmlu/, ceval/, cmmlu/, gsm8k/, humaneval/ (see --help)");
    if (v.endpoint && v.model) throw new XverseError("bad_flag", "give --model or --endpoint, not both");
    const tasks = parseTasks(v.tasks as string | undefined);
    const out = typeof v.out === "string" ? resolve(v.out) : undefined;
    const cacheFile = v["no-cache"] ? null : typeof v.cache === "string" ? resolve(v.cache) : out ? `${out}.cache.jsonl` : null;
    const settings: EvalSettings = {
      dataDir: resolve(v.data),
      tasks,
      shots: numberFlag(v.shots as string | undefined, "--shots", { int: true, min: 0 }),
      limit: numberFlag(v.limit as string | undefined, "--limit", { int: true, min: 1 }),
      cacheFile,
      allowCodeExecution: v["allow-code-execution"] === true,
      sandbox: {
        timeoutMs: 1000 * (numberFlag(v.timeout as string | undefined, "--timeout", { min: 0.1 }) ?? 10),
        memoryMb: numberFlag(v.memory as string | undefined, "--memory", { int: true, min: 64 }) ?? 1024,
      },
      progress: v.quiet !== true,
      concurrency: numberFlag(v.concurrency as string | undefined, "--concurrency", { int: true, min: 1, max: 256 }) ?? (v.endpoint ? 8 : 1),
    };

    let scorer: Scorer;
    let name: string;
    if (typeof v.endpoint === "string") {
      const ep = await new EndpointScorer(v.endpoint, {
        apiKey: (v["api-key"] as string | undefined) ?? process.env.OPENAI_API_KEY,
        model: v["endpoint-model"] as string | undefined,
        tokenizer: typeof v.tokenizer === "string" ? loadTokenizer(v.tokenizer) : undefined,
      }).init();
      scorer = ep;
      name = (v.name as string | undefined) ?? ep.modelName ?? v.endpoint;
    } else {
      const path = (await resolveModelFlag(v)) ?? defaultModelDir();
      const { model, tokenizer } = await loadModel(path, loadOptionsFromFlags(v));
      // The cache key names the model by its resolved path, its mtime (a model rewritten in place — fine-tuned,
      // converted — gets a new one), a LoRA adapter and the load-time transform (each changes the scores).
      const q = loadOptionsFromFlags(v).quantize;
      const stamp = (p: string) => Math.round(statSync(p).mtimeMs);
      const adapter = typeof v.adapter === "string" ? `+lora:${resolve(v.adapter)}@${stamp(v.adapter)}` : "";
      scorer = new LocalScorer(model, tokenizer, `local:${resolve(path)}@${stamp(path)}${adapter}${q ? `#int${q}` : ""}`);
      name = (v.name as string | undefined) ?? basename(resolve(path));
    }
    if (cacheFile && settings.progress) process.stderr.write(`cache: ${cacheFile}\n`);
    if (tasks.includes("humaneval") && settings.allowCodeExecution) process.stderr.write(`humaneval sandbox: ${describeSandbox(sandboxLayers())}\n`);

    const report = await runEval(scorer, settings);
    if (out) writeReport(out, report);
    process.stdout.write(`${resultsTable([{ name, report }])}\n\n${subjectTable(report)}\n`);
    if (out) process.stderr.write(`report: ${out}\n`);
  },
};
