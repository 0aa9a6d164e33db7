/**
 * Prompt formats, each copied in spirit (not code) from the benchmark's reference evaluation, because a score is
 * only comparable when the prompt is byte-identical:
 * - MMLU: hendrycks/test evaluate.py as lm-eval-harness (tasks/mmlu) spells it — header "The following are
 *   multiple choice questions (with answers) about {subject}.\n\n" with the subject's underscores turned into
 *   single spaces (evaluate.py's format_subject leaves a double space; lm-eval and most reports use one), the
 *   question stripped, "\nA. …\nB. …\nC. …\nD. …\nAnswer:" and, for a dev example, " {X}\n\n". Scored choices
 *   are " A" … " D" (lm-eval's target_delimiter " ").
 * - C-Eval: hkust-nlp/ceval code/evaluator_series/evaluators/llama.py — header
 *   "以下是中国关于{中文科目}考试的单项选择题，请选出其中的正确答案。\n\n", "{question}\nA. …\nD. …\n答案：" and, for a
 *   dev example, "{X}\n\n". The reference compares the next-token logits of "A"…"D" right after "答案：", i.e.
 *   continuations without a space.
 * - CMMLU: haonan-li/CMMLU src/mp_utils.py — header "以下是关于{中文科目}的单项选择题，请直接给出正确答案的选项。\n\n",
 *   "题目：{question}\nA. …\nD. …\n答案是：" and "{X}\n\n"; continuations "A"…"D" (no space), as the reference.
 * - GSM8K: the chain-of-thought exemplars of Wei et al. 2022 (arXiv 2201.11903, Table 20; also lm-eval's
 *   gsm8k-cot), the first four, as "Q: {question}\nA: {reasoning} The answer is {N}.\n\n"; the test item
 *   ends "Q: {question}\nA:". Generation stops at "\n\n" or "Q:".
 * - HumanEval: 0-shot, the prompt is the problem's own signature + docstring; stop sequences below.
 */
import { LETTERS, type Gsm8kItem, type McItem, type McSubject, type McTask } from "./data.js";

export interface McPrompt { context: string; continuations: string[] }

function mmluExample(it: McItem, withAnswer: boolean): string {
  let s = it.question.trim();
  it.choices.forEach((c, i) => { s += `\n${LETTERS[i]}. ${c}`; });
  s += "\nAnswer:";
  return withAnswer ? `${s} ${LETTERS[it.answer]}\n\n` : s;
}

function cevalExample(it: McItem, withAnswer: boolean): string {
  let s = it.question;
  it.choices.forEach((c, i) => { s += `\n${LETTERS[i]}. ${c}`; });
  s += "\n答案：";
  return withAnswer ? `${s}${LETTERS[it.answer]}\n\n` : s;
}

function cmmluExample(it: McItem, withAnswer: boolean): string {
  let s = `题目：${it.question}`;
  it.choices.forEach((c, i) => { s += `\n${LETTERS[i]}. ${c}`; });
  s += "\n答案是：";
  return withAnswer ? `${s}${LETTERS[it.answer]}\n\n` : s;
}

const FORMAT: Record<McTask, { header(name: string): string; example(it: McItem, withAnswer: boolean): string; continuations: string[] }> = {
  mmlu: {
    header: (n) => `The following are multiple choice questions (with answers) about ${n}.\n\n`,
    example: mmluExample,
    continuations: LETTERS.map((l) => ` ${l}`),
  },
  ceval: {
    header: (n) => `以下是中国关于${n}考试的单项选择题，请选出其中的正确答案。\n\n`,
    example: cevalExample,
    continuations: [...LETTERS],
  },
  cmmlu: {
    header: (n) => `以下是关于${n}的单项选择题，请直接给出正确答案的选项。\n\n`,
    example: cmmluExample,
    continuations: [...LETTERS],
  },
};

/** The few-shot prefix of a subject: header + the first `shots` dev examples with answers. */
export function mcFewShotPrefix(subject: McSubject, shots: number): string {
  const f = FORMAT[subject.task];
  return f.header(subject.displayName) + subject.dev.slice(0, shots).map((it) => f.example(it, true)).join("");
}

/** The full prompt of one item and the continuations scored after it (one per choice). */
export function mcPrompt(subject: McSubject, item: McItem, shots: number): McPrompt {
  const f = FORMAT[subject.task];
  return { context: mcFewShotPrefix(subject, shots) + f.example(item, false), continuations: f.continuations.slice(0, item.choices.length) };
}

/** Wei et al. 2022's GSM8K chain-of-thought exemplars (the first four of eight). */
export const GSM8K_EXEMPLARS: readonly { question: string; answer: string }[] = [
  {
    question: "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
    answer: "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.",
  },
  {
    question: "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
    answer: "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
  },
  {
    question: "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
    answer: "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39.",
  },
  {
    question: "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
    answer: "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8.",
  },
];

export const GSM8K_STOP = ["\n\n", "Q:"];

export function gsm8kPrompt(item: Gsm8kItem, shots = 4): string {
  if (shots > GSM8K_EXEMPLARS.length) throw new RangeError(`GSM8K has ${GSM8K_EXEMPLARS.length} exemplars, asked for ${shots}`);
  const shotsText = GSM8K_EXEMPLARS.slice(0, shots).map((e) => `Q: ${e.question}\nA: ${e.answer}\n\n`).join("");
  return `${shotsText}Q: ${item.question}\nA:`;
}

/**
 * The final number of a GSM8K answer: the reference's "#### N", else the exemplars' "The answer is N", else the
 * last number in the text (lm-eval's strict-match then flexible-extract). Commas, "$" and a trailing "." are
 * stripped, so "$1,000." reads as "1000". Returns null when the text holds no number.
 */
export function extractGsm8kAnswer(text: string): string | null {
  const marked = /####\s*(-?[$0-9.,]+)/.exec(text) ?? /The answer is\s*(-?[$0-9.,]*[0-9])/i.exec(text);
  if (marked) return normalizeNumber(marked[1]!);
  const all = text.match(/-?[$0-9.,]*[0-9]/g);
  return all ? normalizeNumber(all[all.length - 1]!) : null;
}

function normalizeNumber(s: string): string {
  s = s.replace(/[$,]/g, "").replace(/\.+$/, "");
  // "18.00" and "18" are the same answer; keep the text when it is not a plain number.
  const n = Number(s);
  return Number.isFinite(n) && s !== "" ? String(n) : s;
}

/** True when a model's GSM8K output ends in the reference answer. */
export function gsm8kCorrect(output: string, answer: string): boolean {
  const got = extractGsm8kAnswer(output);
  return got !== null && got === normalizeNumber(answer);
}

/** HumanEval generation stops (Codex paper, Chen et al. 2021): a new top-level statement ends the function. */
export const HUMANEVAL_STOP = ["\ndef", "\nclass", "\nif __name__", "\nprint", "\n#"];

/** Cuts a completion at the first stop sequence. */
export function truncateAtStop(text: string, stops: readonly string[]): string {
  let end = text.length;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end);
}
