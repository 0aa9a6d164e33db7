/**
 * Readers for the benchmarks' own files, from a directory laid out as DIR/{mmlu,ceval,cmmlu,gsm8k,humaneval}/.
 * Nothing is downloaded. Within a task folder both the flat layout (abstract_algebra_dev.csv) and the split
 * folders of the original releases (dev/abstract_algebra_dev.csv, CMMLU's dev/computer_science.csv) are found.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { gunzipSync } from "node:zlib";
import { XverseError } from "../errors.js";
import { parseCsv } from "./csv.js";
import { CEVAL_SUBJECTS_ZH, CMMLU_SUBJECTS_ZH } from "./subjects.js";
import { pushAll } from "../arrays.js";

export type McTask = "mmlu" | "ceval" | "cmmlu";
export type TaskName = McTask | "gsm8k" | "humaneval";
export const TASKS: readonly TaskName[] = ["mmlu", "ceval", "cmmlu", "gsm8k", "humaneval"];
export const LETTERS = ["A", "B", "C", "D"] as const;

export interface McItem {
  task: McTask;
  /** The file-name subject, e.g. "abstract_algebra". */
  subject: string;
  split: string;
  /** 0-based row index in its file (header excluded): the item's stable key. */
  index: number;
  question: string;
  choices: string[];
  /** 0-based index of the right choice (0 = A). */
  answer: number;
}

export interface McSubject {
  task: McTask;
  subject: string;
  /** The name the prompt header uses: "abstract algebra", "计算机网络". */
  displayName: string;
  /** Few-shot examples (the dev split, in file order). */
  dev: McItem[];
  /** Scored items: MMLU and CMMLU test, C-Eval val (its test split has no public answers). */
  eval: McItem[];
}

export interface Gsm8kItem { index: number; question: string; solution: string; answer: string }
export interface HumanEvalItem { index: number; taskId: string; prompt: string; entryPoint: string; canonicalSolution: string; test: string }

const SPLITS = new Set(["dev", "val", "test", "train"]);

function taskDir(dataDir: string, task: TaskName): string {
  const d = join(dataDir, task);
  if (!existsSync(d) || !statSync(d).isDirectory()) {
    throw new XverseError("bad_data", `no ${task} data: expected a folder ${d} (--data DIR must hold ${task}/ with the dataset's own files)`);
  }
  return d;
}

/** Files under dir (two levels deep) whose name passes `keep`, sorted for a stable order. */
function listFiles(dir: string, keep: (name: string) => boolean, depth = 2): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && depth > 0) pushAll(out, listFiles(p, keep, depth - 1));
    else if (e.isFile() && keep(e.name)) out.push(p);
  }
  return out.sort();
}

/** Split and subject of one CSV: from a `_split` suffix, else from the folder it sits in. */
function classify(path: string): { subject: string; split: string } | null {
  const name = basename(path, ".csv");
  const m = /^(.+)_(dev|val|test|train)$/.exec(name);
  if (m) return { subject: m[1]!, split: m[2]! };
  const parent = basename(dirname(path));
  return SPLITS.has(parent) ? { subject: name, split: parent } : null;
}

function answerIndex(raw: string, where: string): number {
  const s = raw.trim();
  const letter = LETTERS.indexOf(s.toUpperCase() as (typeof LETTERS)[number]);
  if (letter >= 0) return letter;
  if (/^[0-3]$/.test(s)) return Number(s);
  throw new XverseError("bad_data", `${where}: answer "${raw}" is neither a letter A–D nor an index 0–3`);
}

/**
 * One benchmark CSV. Layouts, detected from the first row:
 * - a header naming question / A–D (or choice0–3) / answer columns in any order (cais/mmlu, C-Eval, CMMLU);
 * - no header (the original hendrycks MMLU files): question, four choices, answer letter.
 * Rows without an answer (C-Eval's test split) come back with answer -1.
 */
export function readMcCsv(path: string, task: McTask, subject: string, split: string): McItem[] {
  const rows = parseCsv(readFileSync(path, "utf8"), path).filter((r) => r.some((c) => c.trim() !== ""));
  if (rows.length === 0) return [];
  const head = rows[0]!.map((c) => c.trim().toLowerCase());
  let qCol = 0, choiceCols = [1, 2, 3, 4], aCol = 5, body = rows;
  // A header always names a "question" column; a hendrycks question is never exactly that word.
  if (head.includes("question")) {
    qCol = head.indexOf("question");
    const letters = ["a", "b", "c", "d"].map((c) => head.indexOf(c));
    const numbered = [0, 1, 2, 3].map((i) => head.indexOf(`choice${i}`));
    choiceCols = letters.every((i) => i >= 0) ? letters : numbered;
    if (choiceCols.some((i) => i < 0)) throw new XverseError("bad_data", `${path}: header has no A–D or choice0–3 columns`);
    aCol = head.indexOf("answer");
    body = rows.slice(1);
  } else if (rows[0]!.length < 6) {
    throw new XverseError("bad_data", `${path}: expected a header or six columns (question, A, B, C, D, answer), got ${rows[0]!.length}`);
  }
  return body.map((r, index) => {
    const where = `${path} row ${index + 1}`;
    const raw = aCol >= 0 ? (r[aCol] ?? "") : "";
    return {
      task, subject, split, index,
      question: r[qCol] ?? "",
      choices: choiceCols.map((c) => r[c] ?? ""),
      answer: raw.trim() === "" ? -1 : answerIndex(raw, where),
    };
  });
}

const EVAL_SPLIT: Record<McTask, string[]> = { mmlu: ["test", "val"], ceval: ["val"], cmmlu: ["test", "val"] };

export function subjectDisplayName(task: McTask, subject: string): string {
  if (task === "ceval") return CEVAL_SUBJECTS_ZH[subject] ?? subject;
  if (task === "cmmlu") return CMMLU_SUBJECTS_ZH[subject] ?? subject;
  return subject.replace(/_/g, " ");
}

/** All subjects of one multiple-choice task, sorted by subject. */
export function readMcTask(dataDir: string, task: McTask): McSubject[] {
  const dir = taskDir(dataDir, task);
  const bySubject = new Map<string, Map<string, string>>();
  for (const f of listFiles(dir, (n) => n.endsWith(".csv"))) {
    const c = classify(f);
    if (!c) continue;
    if (!bySubject.has(c.subject)) bySubject.set(c.subject, new Map());
    bySubject.get(c.subject)!.set(c.split, f);
  }
  const out: McSubject[] = [];
  for (const subject of [...bySubject.keys()].sort()) {
    const files = bySubject.get(subject)!;
    const evalSplit = EVAL_SPLIT[task].find((s) => files.has(s));
    if (!evalSplit) continue;
    const items = readMcCsv(files.get(evalSplit)!, task, subject, evalSplit);
    const missing = items.find((it) => it.answer < 0);
    if (missing) throw new XverseError("bad_data", `${files.get(evalSplit)}: row ${missing.index + 1} has no answer`);
    const devFile = files.get("dev");
    out.push({ task, subject, displayName: subjectDisplayName(task, subject), dev: devFile ? readMcCsv(devFile, task, subject, "dev") : [], eval: items });
  }
  if (out.length === 0) throw new XverseError("bad_data", `${dir}: no ${task} CSVs named <subject>_{${EVAL_SPLIT[task].join(",")}}.csv or {${EVAL_SPLIT[task].join(",")}}/<subject>.csv`);
  return out;
}

function readJsonl(path: string): unknown[] {
  const buf = readFileSync(path);
  const text = path.endsWith(".gz") ? gunzipSync(buf).toString("utf8") : buf.toString("utf8");
  const out: unknown[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try { out.push(JSON.parse(line)); } catch (e) {
      throw new XverseError("bad_data", `${path} line ${i + 1}: not JSON (${(e as Error).message})`);
    }
  });
  return out;
}

function str(o: unknown, key: string, where: string): string {
  const v = (o as Record<string, unknown>)?.[key];
  if (typeof v !== "string") throw new XverseError("bad_data", `${where}: field "${key}" missing or not a string`);
  return v;
}

/** GSM8K's test.jsonl (or the one file with "test" in its name). The answer is the number after "#### ". */
export function readGsm8k(dataDir: string): Gsm8kItem[] {
  const dir = taskDir(dataDir, "gsm8k");
  const files = listFiles(dir, (n) => n.endsWith(".jsonl"));
  const file = files.find((f) => basename(f) === "test.jsonl") ?? files.filter((f) => /test/.test(basename(f)) && !/socratic/.test(f))[0];
  if (!file) throw new XverseError("bad_data", `${dir}: no test.jsonl (found: ${files.map((f) => basename(f)).join(", ") || "nothing"})`);
  return readJsonl(file).map((o, index) => {
    const where = `${file} line ${index + 1}`;
    const solution = str(o, "answer", where);
    const m = /####\s*(.+?)\s*$/.exec(solution);
    if (!m) throw new XverseError("bad_data", `${where}: answer has no "#### N" line`);
    return { index, question: str(o, "question", where), solution, answer: m[1]!.replace(/,/g, "") };
  });
}

/** HumanEval.jsonl(.gz): 164 problems {task_id, prompt, entry_point, canonical_solution, test}. */
export function readHumanEval(dataDir: string): HumanEvalItem[] {
  const dir = taskDir(dataDir, "humaneval");
  const files = listFiles(dir, (n) => /\.jsonl(\.gz)?$/.test(n));
  const file = files.find((f) => /^HumanEval\.jsonl/i.test(basename(f))) ?? files[0];
  if (!file) throw new XverseError("bad_data", `${dir}: no HumanEval.jsonl or HumanEval.jsonl.gz`);
  return readJsonl(file).map((o, index) => {
    const where = `${file} line ${index + 1}`;
    return {
      index, taskId: str(o, "task_id", where), prompt: str(o, "prompt", where), entryPoint: str(o, "entry_point", where),
      canonicalSolution: str(o, "canonical_solution", where), test: str(o, "test", where),
    };
  });
}
