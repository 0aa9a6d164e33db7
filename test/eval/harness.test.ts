// The harness with scripted scorers (no model): choice picking, per-subject/per-task summaries, the resumable
// cache, HumanEval gating and pass@1, and the README-style table.
import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readHumanEval, readMcTask } from "../../src/eval/data.js";
import { runEval, type EvalSettings, type McRecord } from "../../src/eval/harness.js";
import { resultsTable, subjectTable } from "../../src/eval/report.js";
import type { GenerateRequest, LoglikResult, Scorer } from "../../src/eval/scorer.js";
import { sandboxLayers } from "../../src/eval/sandbox.js";
import { fixture } from "../helpers/peers.js";

const data = fixture("eval");

/** Always prefers one letter; counts calls. */
class LetterScorer implements Scorer {
  calls = 0;
  constructor(readonly letter: string, readonly id = "fake") {}
  async loglikelihood(_context: string, continuation: string): Promise<LoglikResult> {
    this.calls++;
    return { logprob: continuation.trim() === this.letter ? -1 : -2, isGreedy: continuation.trim() === this.letter, tokens: 1 };
  }
  async generate(): Promise<string> {
    this.calls++;
    return " Some reasoning. The answer is 18.";
  }
}

test("multiple choice: the highest log-likelihood wins; accuracy per subject and task from the datasets' answers", async () => {
  const s: EvalSettings = { dataDir: data, tasks: ["mmlu", "cmmlu"], limit: 10, progress: false };
  const r = await runEval(new LetterScorer("B"), s);
  const mmlu = readMcTask(data, "mmlu"), cmmlu = readMcTask(data, "cmmlu");
  const expectB = (subjects: typeof mmlu) => subjects.map((x) => x.eval.slice(0, 10).filter((i) => i.answer === 1).length);
  const t = r.tasks;
  assert.deepEqual(t.map((x) => x.task), ["mmlu", "cmmlu"]);
  assert.deepEqual(t[0]!.subjects.map((x) => x.correct), expectB(mmlu));
  assert.deepEqual(t[1]!.subjects.map((x) => x.correct), expectB(cmmlu));
  assert.equal(t[0]!.n, 30);
  assert.equal(t[0]!.accuracy, t[0]!.correct / 30);
  const first = r.items[0] as McRecord;
  assert.deepEqual(first.continuations, [" A", " B", " C", " D"]);
  assert.deepEqual(first.scores, [-2, -1, -2, -2]);
  assert.equal(first.prediction, "B");
  assert.equal(first.answer, "B");
  assert.equal(r.items.filter((i) => i.task === "cmmlu")[0]!.prompt.endsWith("答案是："), true);
});

test("the cache resumes: a second run computes nothing, a torn line is ignored, other shots recompute", async () => {
  const dir = mkdtempSync(join(tmpdir(), "xverse-evalcache-"));
  try {
    const cacheFile = join(dir, "c.jsonl");
    const s: EvalSettings = { dataDir: data, tasks: ["mmlu", "gsm8k"], limit: 2, cacheFile, progress: false };
    const a = new LetterScorer("A");
    const r1 = await runEval(a, s);
    assert.equal(a.calls, 6 * 4 + 2);
    appendFileSync(cacheFile, '{"key": "eval-v1|fake|mmlu|x|9');
    const b = new LetterScorer("A");
    const r2 = await runEval(b, s);
    assert.equal(b.calls, 0);
    assert.deepEqual(r2.items, r1.items);
    assert.equal(r2.tasks[1]!.correct, 1); // GSM8K item 0's answer is 18
    const c = new LetterScorer("A");
    await runEval(c, { ...s, tasks: ["mmlu"], shots: 3 });
    assert.equal(c.calls, 6 * 4);
    const d = new LetterScorer("A", "other-model");
    await runEval(d, { ...s, tasks: ["gsm8k"] });
    assert.equal(d.calls, 2);
    assert.ok(readFileSync(cacheFile, "utf8").split("\n").length > 8);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("HumanEval needs --allow-code-execution", async () => {
  await assert.rejects(runEval(new LetterScorer("A"), { dataDir: data, tasks: ["humaneval"], progress: false }), /--allow-code-execution/);
});

test("HumanEval pass@1: canonical completions pass, a stub fails", { skip: !sandboxLayers().python && "python3 not found" }, async () => {
  const problems = readHumanEval(data);
  const canonical: Scorer = {
    id: "canonical",
    async loglikelihood(): Promise<LoglikResult> { throw new Error("unused"); },
    async generate(prompt: string, req: GenerateRequest) {
      assert.ok(req.stop.includes("\ndef"));
      return problems.find((p) => p.prompt === prompt)!.canonicalSolution;
    },
  };
  const stub: Scorer = { ...canonical, id: "stub", async generate() { return "    pass\n"; } };
  const s: EvalSettings = { dataDir: data, tasks: ["humaneval"], limit: 4, allowCodeExecution: true, progress: false };
  const good = await runEval(canonical, s), bad = await runEval(stub, s);
  assert.equal(good.tasks[0]!.accuracy, 1);
  assert.equal(bad.tasks[0]!.accuracy, 0);
  assert.match(good.sandbox ?? "", /rlimits/);
});

test("results table: the seed README layout, one column per benchmark with its shots", async () => {
  const r = await runEval(new LetterScorer("B"), { dataDir: data, tasks: ["mmlu", "ceval", "gsm8k"], limit: 1, progress: false });
  assert.equal(resultsTable([{ name: "fake", report: r }]), [
    "| Model | MMLU (5-shot) | C-Eval (5-shot) | GSM8K (4-shot) |",
    "|:--|:--:|:--:|:--:|",
    `| fake | ${(100 * r.tasks[0]!.accuracy).toFixed(1)} | ${(100 * r.tasks[1]!.accuracy).toFixed(1)} | 100.0 |`,
  ].join("\n"));
  assert.match(subjectTable(r), /\| C-Eval \| computer_network \(计算机网络\) \| 1 \| [01] \|/);
});

test("concurrency: items overlap up to the limit (and the scorer's cap) and keep their order", async () => {
  class SlowScorer extends LetterScorer {
    inFlight = 0;
    peak = 0;
    override async loglikelihood(context: string, continuation: string): Promise<LoglikResult> {
      this.inFlight++;
      this.peak = Math.max(this.peak, this.inFlight);
      await new Promise((r) => setTimeout(r, 1 + (context.length % 3)));
      this.inFlight--;
      return super.loglikelihood(context, continuation);
    }
  }
  const s: EvalSettings = { dataDir: data, tasks: ["mmlu"], limit: 4, progress: false };
  const serial = await runEval(new LetterScorer("C"), s);
  const fast = new SlowScorer("C");
  const parallel = await runEval(fast, { ...s, concurrency: 5 });
  assert.deepEqual(parallel.items, serial.items);
  assert.equal(fast.peak, 5);
  const capped = Object.assign(new SlowScorer("C"), { maxConcurrency: 2 });
  await runEval(capped, { ...s, concurrency: 5 });
  assert.equal(capped.peak, 2);
});
