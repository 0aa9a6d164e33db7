/**
 * The brute-force check both constrained-decoding suites run: drive a hook over random logits and, at every step,
 * compare its mask with every vocabulary piece fed to a fresh recognizer and priced by minCompletion against the
 * tokens left; then take the best allowed token and go on.
 */
import assert from "node:assert/strict";
import type { ConstrainedHook } from "../../src/chat/constrained.js";
import { minCompletion } from "../../src/chat/json-budget.js";
import { CallRecognizer, type CallGrammar } from "../../src/chat/json-prefix.js";

export interface MaskCheck {
  grammar: CallGrammar;
  pieces: readonly (string | null)[];
  vocabSize: number;
  seed: number;
  maxNew: number;
  /**
   * When no token fits: expect those that leave the least to write (the hook's out-of-room behaviour). Without it
   * a step where nothing fits fails.
   */
  overBudget?: boolean;
  /** Prefix of each step's assertion message. */
  label?: string;
}

/** Runs the hook to its end under the check; returns the text it wrote (asserted complete: state "done"). */
export function checkMaskByBruteForce(hook: ConstrainedHook, c: MaskCheck): string {
  let state = c.seed;
  const rand = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const ids = [5];
  let text = "";
  const logits = new Float32Array(c.vocabSize);
  for (let step = 0; step < c.maxNew; step++) {
    for (let i = 0; i < logits.length; i++) logits[i] = rand();
    hook(ids, logits);
    if (hook.state === "done") break;
    const room = c.maxNew - step - 1;
    const base = CallRecognizer.start(c.grammar);
    assert.ok(base.feedText(text));
    const expected: number[] = [];
    let bestOver = Infinity;
    const over: [number, number][] = [];
    c.pieces.forEach((p, id) => {
      if (p === null) return;
      const r = base.clone();
      if (!r.feedText(p)) return;
      const cost = minCompletion(r);
      if (cost <= room) expected.push(id);
      else if (c.overBudget) { over.push([id, cost]); bestOver = Math.min(bestOver, cost); }
    });
    // nothing fits: the tokens that leave the least to write
    const want = expected.length || !c.overBudget ? expected : over.filter(([, cost]) => cost === bestOver).map(([id]) => id).sort((a, b) => a - b);
    const got: number[] = [];
    logits.forEach((x, id) => x > -Infinity && got.push(id));
    assert.deepEqual(got, want, `${c.label ?? ""}seed ${c.seed} step ${step} after ${JSON.stringify(text)}`);
    let id = got[0];
    for (const g of got) if (logits[g] > logits[id]) id = g;
    ids.push(id);
    text += c.pieces[id];
  }
  hook(ids, logits); // the hook reads the last token at its next call (the budget may use every token)
  assert.equal(hook.state, "done", text);
  return text;
}
