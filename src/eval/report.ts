/**
 * Reports: the seed README's results table (one row per model, one column per benchmark with its shot count),
 * a per-subject table, and the full JSON (every item's prompt, per-choice scores, prediction and answer) for
 * audit. Files are written to a temporary name and renamed, so a crash never leaves half a report.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { TaskName } from "./data.js";
import type { EvalReport } from "./harness.js";
import { writeError, writeFileAtomic as writeAtomic } from "../io/atomic.js";

const TITLES: Record<TaskName, string> = { mmlu: "MMLU", ceval: "C-Eval", cmmlu: "CMMLU", gsm8k: "GSM8K", humaneval: "HumanEval" };
const ORDER: TaskName[] = ["mmlu", "ceval", "cmmlu", "gsm8k", "humaneval"];

const pct = (x: number) => (100 * x).toFixed(1);

/** | Model | MMLU (5-shot) | C-Eval (5-shot) | … | — accuracy in %, pass@1 for HumanEval. */
export function resultsTable(reports: { name: string; report: EvalReport }[]): string {
  const tasks = ORDER.filter((t) => reports.some((r) => r.report.tasks.some((x) => x.task === t)));
  const shots = (t: TaskName) => reports.map((r) => r.report.tasks.find((x) => x.task === t)?.shots).find((x) => x !== undefined) ?? 0;
  const head = `| Model | ${tasks.map((t) => `${TITLES[t]} (${shots(t)}-shot)`).join(" | ")} |`;
  const rule = `|:--|${tasks.map(() => ":--:").join("|")}|`;
  const rows = reports.map(({ name, report }) => {
    const cells = tasks.map((t) => {
      const s = report.tasks.find((x) => x.task === t);
      return s && s.n ? pct(s.accuracy) : "–";
    });
    return `| ${name} | ${cells.join(" | ")} |`;
  });
  return [head, rule, ...rows].join("\n");
}

/** Per task and subject: items, correct, accuracy; each task closes with its overall and subject-mean rows. */
export function subjectTable(report: EvalReport): string {
  const lines = ["| Task | Subject | Items | Correct | Accuracy (%) |", "|:--|:--|--:|--:|--:|"];
  for (const t of report.tasks) {
    for (const s of t.subjects) lines.push(`| ${TITLES[t.task]} | ${s.displayName === s.subject ? s.subject : `${s.subject} (${s.displayName})`} | ${s.n} | ${s.correct} | ${pct(s.accuracy)} |`);
    lines.push(`| **${TITLES[t.task]}** | all items | ${t.n} | ${t.correct} | **${pct(t.accuracy)}** |`);
    if (t.subjects.length > 1) lines.push(`| ${TITLES[t.task]} | mean of subjects | | | ${pct(t.macroAccuracy)} |`);
  }
  return lines.join("\n");
}

/** Writes text atomically (temp name in the same folder, then rename). */
export function writeFileAtomic(path: string, text: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (e) {
    throw writeError(path, e);
  }
  // fsync + rename, and the temp file is removed when a write fails (a full disk left report.json.tmp-PID before)
  writeAtomic(path, text);
}

export function writeReport(path: string, report: EvalReport): void {
  writeFileAtomic(path, JSON.stringify(report, null, 1) + "\n");
}

/** One report from several runs of the same model (e.g. tasks run in parallel processes): tasks and items joined. */
export function mergeReports(reports: EvalReport[]): EvalReport {
  if (reports.length === 0) throw new RangeError("mergeReports: no reports");
  const first = reports[0]!;
  const tasks = reports.flatMap((r) => r.tasks);
  return {
    ...first,
    settings: { ...first.settings, tasks: tasks.map((t) => t.task), shots: Object.assign({}, ...reports.map((r) => r.settings.shots)) },
    sandbox: reports.map((r) => r.sandbox).find((s) => s) ?? null,
    tasks,
    items: reports.flatMap((r) => r.items),
  };
}
