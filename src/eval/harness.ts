/**
 * The evaluation run: reads the tasks' data, builds every item's prompt, scores it through a Scorer (in-process
 * model or OpenAI-compatible endpoint), caches each finished item, and summarises per subject and per task.
 * Multiple choice picks the choice with the highest log-likelihood; GSM8K and HumanEval generate greedily.
 */
import { XverseError } from "../errors.js";
import { itemKey, ResultCache } from "./cache.js";
import { LETTERS, readGsm8k, readHumanEval, readMcTask, type McTask, type TaskName } from "./data.js";
import { Progress } from "./progress.js";
import { extractGsm8kAnswer, gsm8kCorrect, gsm8kPrompt, GSM8K_EXEMPLARS, GSM8K_STOP, HUMANEVAL_STOP, mcPrompt } from "./prompts.js";
import { describeSandbox, runPythonSandboxed, sandboxLayers, type SandboxOptions } from "./sandbox.js";
import type { Scorer } from "./scorer.js";
import { pushAll } from "../arrays.js";

export const DEFAULT_SHOTS: Readonly<Record<TaskName, number>> = { mmlu: 5, ceval: 5, cmmlu: 5, gsm8k: 4, humaneval: 0 };

export interface EvalSettings {
  dataDir: string;
  tasks: TaskName[];
  /** Overrides the default shot count of mmlu/ceval/cmmlu/gsm8k (HumanEval is always 0-shot). */
  shots?: number;
  /** At most N items per subject (multiple choice) or per task (GSM8K, HumanEval). */
  limit?: number;
  cacheFile?: string | null;
  /** Required for HumanEval: it runs model-written code. */
  allowCodeExecution?: boolean;
  sandbox?: SandboxOptions;
  gsm8kMaxTokens?: number;
  humanevalMaxTokens?: number;
  progress?: boolean;
  /** Items scored at once (endpoint mode; capped by the scorer's maxConcurrency). Default 1. */
  concurrency?: number;
}

interface ItemBase { task: TaskName; subject: string; index: number; prompt: string; correct: boolean }
export interface McRecord extends ItemBase { kind: "mc"; continuations: string[]; scores: number[]; greedy: boolean[]; prediction: string; answer: string }
export interface GenRecord extends ItemBase { kind: "gsm8k"; output: string; extracted: string | null; answer: string }
export interface CodeRecord extends ItemBase { kind: "humaneval"; taskId: string; completion: string; status: string; error: string }
export type ItemRecord = McRecord | GenRecord | CodeRecord;

export interface SubjectSummary { subject: string; displayName: string; n: number; correct: number; accuracy: number }
export interface TaskSummary {
  task: TaskName;
  shots: number;
  n: number;
  correct: number;
  /** Over all items (MMLU's convention; pass@1 for HumanEval). */
  accuracy: number;
  /** Mean of subject accuracies (C-Eval's and CMMLU's convention). */
  macroAccuracy: number;
  subjects: SubjectSummary[];
}

export interface EvalReport {
  modelId: string;
  created: string;
  settings: { dataDir: string; tasks: TaskName[]; shots: Partial<Record<TaskName, number>>; limit: number | null };
  sandbox: string | null;
  tasks: TaskSummary[];
  items: ItemRecord[];
}

interface Job { task: TaskName; subject: string; displayName: string; index: number; key: string; run(): Promise<ItemRecord> }

export function shotsFor(task: TaskName, s: EvalSettings): number {
  if (task === "humaneval") return 0;
  const n = s.shots ?? DEFAULT_SHOTS[task];
  if (task === "gsm8k" && n > GSM8K_EXEMPLARS.length) throw new XverseError("bad_flag", `--shots ${n}: GSM8K has ${GSM8K_EXEMPLARS.length} chain-of-thought exemplars`);
  return n;
}

function mcJobs(scorer: Scorer, s: EvalSettings, task: McTask): Job[] {
  const shots = shotsFor(task, s);
  const jobs: Job[] = [];
  for (const subj of readMcTask(s.dataDir, task)) {
    if (subj.dev.length < shots) throw new XverseError("bad_data", `${task}/${subj.subject}: ${shots}-shot needs ${shots} dev examples, the dev split has ${subj.dev.length}`);
    const items = s.limit !== undefined ? subj.eval.slice(0, s.limit) : subj.eval;
    for (const item of items) {
      jobs.push({
        task, subject: subj.subject, displayName: subj.displayName, index: item.index,
        key: itemKey(scorer.id, task, subj.subject, item.index, shots),
        run: async () => {
          const p = mcPrompt(subj, item, shots);
          const scores: number[] = [], greedy: boolean[] = [];
          for (const c of p.continuations) {
            const r = await scorer.loglikelihood(p.context, c);
            scores.push(r.logprob);
            greedy.push(r.isGreedy);
          }
          let best = 0;
          for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
          return {
            kind: "mc", task, subject: subj.subject, index: item.index, prompt: p.context, continuations: p.continuations,
            scores, greedy, prediction: LETTERS[best]!, answer: LETTERS[item.answer]!, correct: best === item.answer,
          };
        },
      });
    }
  }
  return jobs;
}

function gsm8kJobs(scorer: Scorer, s: EvalSettings): Job[] {
  const shots = shotsFor("gsm8k", s);
  const items = readGsm8k(s.dataDir);
  return (s.limit !== undefined ? items.slice(0, s.limit) : items).map((item) => ({
    task: "gsm8k" as const, subject: "gsm8k", displayName: "gsm8k", index: item.index,
    key: itemKey(scorer.id, "gsm8k", "gsm8k", item.index, shots),
    run: async (): Promise<ItemRecord> => {
      const prompt = gsm8kPrompt(item, shots);
      const output = await scorer.generate(prompt, { maxNewTokens: s.gsm8kMaxTokens ?? 256, stop: GSM8K_STOP });
      return { kind: "gsm8k", task: "gsm8k", subject: "gsm8k", index: item.index, prompt, output, extracted: extractGsm8kAnswer(output), answer: item.answer, correct: gsm8kCorrect(output, item.answer) };
    },
  }));
}

/** The program HumanEval's execution.py runs: prompt + completion, the tests, then check(entry_point). */
export function humanEvalProgram(prompt: string, completion: string, test: string, entryPoint: string): string {
  return `${prompt}${completion}\n\n${test}\n\ncheck(${entryPoint})\n`;
}

function humanEvalJobs(scorer: Scorer, s: EvalSettings): Job[] {
  const items = readHumanEval(s.dataDir);
  return (s.limit !== undefined ? items.slice(0, s.limit) : items).map((item) => ({
    task: "humaneval" as const, subject: "humaneval", displayName: "humaneval", index: item.index,
    key: itemKey(scorer.id, "humaneval", "humaneval", item.index, 0),
    run: async (): Promise<ItemRecord> => {
      const completion = await scorer.generate(item.prompt, { maxNewTokens: s.humanevalMaxTokens ?? 512, stop: HUMANEVAL_STOP });
      const r = await runPythonSandboxed(humanEvalProgram(item.prompt, completion, item.test, item.entryPoint), s.sandbox);
      const error = r.status === "passed" ? "" : r.status === "timeout" ? "timed out" : (r.stderr.trim().split("\n").pop() ?? "").slice(0, 300);
      return { kind: "humaneval", task: "humaneval", subject: "humaneval", index: item.index, prompt: item.prompt, taskId: item.taskId, completion, status: r.status, error, correct: r.status === "passed" };
    },
  }));
}

export async function runEval(scorer: Scorer, s: EvalSettings): Promise<EvalReport> {
  if (s.tasks.includes("humaneval")) {
    if (!s.allowCodeExecution) throw new XverseError("bad_flag", "humaneval runs model-written Python: pass --allow-code-execution to allow it (it runs sandboxed, see `xverse eval --help`)");
    if (!sandboxLayers(s.sandbox?.python).python) throw new XverseError("unsupported", "humaneval needs python3 on PATH to run the candidates");
  }
  const jobs: Job[] = [];
  for (const task of s.tasks) {
    if (task === "gsm8k") pushAll(jobs, gsm8kJobs(scorer, s));
    else if (task === "humaneval") pushAll(jobs, humanEvalJobs(scorer, s));
    else pushAll(jobs, mcJobs(scorer, s, task));
  }
  const cache = new ResultCache<ItemRecord>(s.cacheFile ?? null);
  const progress = new Progress(jobs.length, process.stderr, s.progress ?? true);
  const items: ItemRecord[] = new Array(jobs.length);
  // Requests to a server can overlap (a vLLM cluster serves many at once); an in-process model runs one at a time.
  const workers = Math.max(1, Math.min(s.concurrency ?? 1, scorer.maxConcurrency ?? Infinity));
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      const job = jobs[i]!;
      let rec = cache.get(job.key);
      const cached = rec !== undefined;
      if (!rec) {
        rec = await job.run();
        cache.put(job.key, rec);
      }
      items[i] = rec;
      progress.tick(`${job.task}/${job.subject}`, cached);
    }
  };
  await Promise.all(Array.from({ length: workers }, worker));
  const displayNames = new Map(jobs.map((j) => [`${j.task}/${j.subject}`, j.displayName]));
  return {
    modelId: scorer.id,
    created: new Date().toISOString(),
    settings: { dataDir: s.dataDir, tasks: s.tasks, shots: Object.fromEntries(s.tasks.map((t) => [t, shotsFor(t, s)])), limit: s.limit ?? null },
    sandbox: s.tasks.includes("humaneval") ? describeSandbox(sandboxLayers(s.sandbox?.python)) : null,
    tasks: summarize(s.tasks, items, displayNames, s),
    items,
  };
}

export function summarize(tasks: TaskName[], items: ItemRecord[], names: Map<string, string>, s: EvalSettings): TaskSummary[] {
  return tasks.map((task) => {
    const mine = items.filter((it) => it.task === task);
    const bySubject = new Map<string, ItemRecord[]>();
    for (const it of mine) {
      if (!bySubject.has(it.subject)) bySubject.set(it.subject, []);
      bySubject.get(it.subject)!.push(it);
    }
    const subjects: SubjectSummary[] = [...bySubject].map(([subject, list]) => {
      const correct = list.filter((it) => it.correct).length;
      return { subject, displayName: names.get(`${task}/${subject}`) ?? subject, n: list.length, correct, accuracy: list.length ? correct / list.length : 0 };
    });
    const correct = mine.filter((it) => it.correct).length;
    return {
      task, shots: shotsFor(task, s), n: mine.length, correct, accuracy: mine.length ? correct / mine.length : 0,
      macroAccuracy: subjects.length ? subjects.reduce((a, x) => a + x.accuracy, 0) / subjects.length : 0,
      subjects,
    };
  });
}
