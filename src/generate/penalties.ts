/**
 * OpenAI's own logit adjustments, as its API reference defines them ("frequency and presence penalties"):
 *
 *   mu[j] -> mu[j] - c[j] * frequency_penalty - float(c[j] > 0) * presence_penalty
 *
 * where c[j] counts token j among the tokens generated so far (the prompt does not count), and then
 * logit_bias[j] is added to token j's logit (−100 … 100: ±100 bans or forces a token in practice). Both act on the
 * raw logits before any Hugging Face processor (repetition penalty, temperature, top-k, top-p) and before the
 * greedy pick, so logit_bias steers greedy decoding too.
 */
import type { LogitsProcessor } from "./processors.js";

export interface OpenAIAdjustments {
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** Token id → bias added to its logit. */
  logitBias?: Readonly<Record<number, number>>;
}

/** The adjustments as one processor for a generation whose prompt is `promptLength` ids; null when all are neutral. */
export function openaiAdjustments(o: OpenAIAdjustments, promptLength: number): LogitsProcessor | null {
  const presence = o.presencePenalty ?? 0;
  const frequency = o.frequencyPenalty ?? 0;
  const bias = Object.entries(o.logitBias ?? {}).map(([id, b]) => [Number(id), b] as const).filter(([, b]) => b !== 0);
  if (presence === 0 && frequency === 0 && !bias.length) return null;
  // counts of the generated ids, updated as ids grow (a processor belongs to one generation)
  const counts = new Map<number, number>();
  let counted = promptLength;
  return (ids, logits) => {
    if (ids.length < counted) {
      counts.clear();
      counted = promptLength;
    }
    for (; counted < ids.length; counted++) counts.set(ids[counted], (counts.get(ids[counted]) ?? 0) + 1);
    if (presence !== 0 || frequency !== 0) {
      for (const [id, c] of counts) if (id < logits.length) logits[id] -= c * frequency + presence;
    }
    for (const [id, b] of bias) if (id < logits.length) logits[id] += b;
    return logits;
  };
}
