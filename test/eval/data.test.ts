// Readers on the real dataset samples (test/fixtures/eval, see its README and PROVENANCE files).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseCsv } from "../../src/eval/csv.js";
import { readGsm8k, readHumanEval, readMcCsv, readMcTask } from "../../src/eval/data.js";
import { fixture } from "../helpers/peers.js";

const data = fixture("eval");

test("CSV: quoted commas, doubled quotes, newlines in fields, CRLF, BOM, empty fields", () => {
  assert.deepEqual(parseCsv('\ufeffa,"b, c","say ""hi"""\r\n"multi\nline",,x\n'), [["a", "b, c", 'say "hi"'], ["multi\nline", "", "x"]]);
  assert.deepEqual(parseCsv("a,b\nc,"), [["a", "b"], ["c", ""]]);
  assert.throws(() => parseCsv('a,"open\n'), /unterminated quoted field starting on line 1/);
});

test("MMLU (cais/mmlu layout: header, 0-based answers): subjects, splits, first items", () => {
  const subjects = readMcTask(data, "mmlu");
  assert.deepEqual(subjects.map((s) => s.subject), ["abstract_algebra", "computer_security", "global_facts"]);
  assert.deepEqual(subjects.map((s) => s.displayName), ["abstract algebra", "computer security", "global facts"]);
  assert.deepEqual(subjects.map((s) => s.dev.length), [5, 5, 5]);
  assert.equal(subjects.reduce((a, s) => a + s.eval.length, 0), 300);
  const dev0 = subjects[0]!.dev[0]!;
  // The fixtures README: this item's answer 1 is B in the original hendrycks CSV.
  assert.equal(dev0.question, "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.");
  assert.deepEqual(dev0.choices, ["0", "1", "2", "3"]);
  assert.equal(dev0.answer, 1);
  assert.deepEqual(subjects[0]!.dev[1]!.choices, ["True, True", "False, False", "True, False", "False, True"]);
});

test("MMLU original layout (headerless, letter answers, dev/ and test/ folders) reads the same items", () => {
  const dir = mkdtempSync(join(tmpdir(), "xverse-mmlu-"));
  try {
    const q = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
    for (const split of ["dev", "test"]) {
      const rows = parseCsv(readFileSync(join(data, "mmlu", `global_facts_${split}.csv`), "utf8")).slice(1);
      const text = rows.map((r) => [...r.slice(0, 5).map(q), "ABCD"[Number(r[5])]].join(",")).join("\n") + "\n";
      mkdirSync(join(dir, "mmlu", split), { recursive: true });
      writeFileSync(join(dir, "mmlu", split, `global_facts_${split}.csv`), text);
    }
    const [orig] = readMcTask(dir, "mmlu");
    const [hf] = readMcTask(data, "mmlu").filter((s) => s.subject === "global_facts");
    assert.equal(orig!.subject, "global_facts");
    assert.deepEqual(orig!.eval.map((i) => [i.question, i.choices, i.answer]), hf!.eval.map((i) => [i.question, i.choices, i.answer]));
    assert.deepEqual(orig!.dev.map((i) => i.answer), hf!.dev.map((i) => i.answer));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("C-Eval: val is scored, Chinese subject names, letter answers; row 0 as in the dataset card", () => {
  const subjects = readMcTask(data, "ceval");
  assert.deepEqual(subjects.map((s) => s.displayName), ["计算机网络", "高中物理", "逻辑学", "初中数学", "操作系统"]);
  assert.equal(subjects.reduce((a, s) => a + s.dev.length, 0), 25);
  assert.equal(subjects.reduce((a, s) => a + s.eval.length, 0), 98);
  const net = subjects[0]!;
  assert.equal(net.eval[0]!.split, "val");
  assert.equal(net.eval[0]!.answer, 2); // C
  assert.deepEqual(net.eval[0]!.choices, ["1", "2", "3", "4"]);
  // Multi-line quoted explanations in dev do not break rows.
  assert.equal(net.dev.length, 5);
  assert.equal(net.dev[1]!.question, "滑动窗口的作用是____。");
});

test("CMMLU: leading index column, Question/Answer header, trailing spaces kept", () => {
  const subjects = readMcTask(data, "cmmlu");
  assert.deepEqual(subjects.map((s) => [s.subject, s.displayName, s.dev.length]), [["computer_science", "计算机科学", 5], ["machine_learning", "机器学习", 5]]);
  assert.equal(subjects.reduce((a, s) => a + s.eval.length, 0), 326);
  assert.deepEqual(subjects[0]!.dev[1]!.choices, ["ARP ", "IP", "TCP", "PPP"]);
  assert.equal(subjects[0]!.dev[1]!.answer, 2);
});

test("a C-Eval test file without answers is read with answer -1 (and never scored)", () => {
  const dir = mkdtempSync(join(tmpdir(), "xverse-ceval-"));
  try {
    writeFileSync(join(dir, "x_test.csv"), "id,question,A,B,C,D\n0,q,a,b,c,d\n");
    assert.equal(readMcCsv(join(dir, "x_test.csv"), "ceval", "x", "test")[0]!.answer, -1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("GSM8K: 300 items, answers after ####, commas dropped", () => {
  const items = readGsm8k(data);
  assert.equal(items.length, 300);
  assert.equal(items[0]!.answer, "18");
  assert.ok(items.every((i) => /^-?[0-9.]+$/.test(i.answer)));
});

test("HumanEval: 164 problems from the .gz, and the plain .jsonl reads the same", () => {
  const items = readHumanEval(data);
  assert.equal(items.length, 164);
  assert.equal(items[0]!.taskId, "HumanEval/0");
  assert.equal(items[0]!.entryPoint, "has_close_elements");
  const dir = mkdtempSync(join(tmpdir(), "xverse-he-"));
  try {
    mkdirSync(join(dir, "humaneval"));
    const lines = items.slice(0, 2).map((i) => JSON.stringify({ task_id: i.taskId, prompt: i.prompt, entry_point: i.entryPoint, canonical_solution: i.canonicalSolution, test: i.test }));
    writeFileSync(join(dir, "humaneval", "HumanEval.jsonl"), lines.join("\n") + "\n");
    assert.deepEqual(readHumanEval(dir).map((i) => i.taskId), ["HumanEval/0", "HumanEval/1"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a missing task folder names the folder it expected", () => {
  assert.throws(() => readMcTask(join(data, "nope"), "mmlu"), /no mmlu data: expected a folder .*nope\/mmlu/);
});
