/** Sampling flags shared by `generate` and `chat`: definitions, help text and parsing in one place. */
import { numberFlag } from "./command.js";
import type { SamplingRequest } from "../generate/sampling.js";

export const SAMPLING_FLAGS = {
  "max-new-tokens": { type: "string" },
  greedy: { type: "boolean" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "repetition-penalty": { type: "string" },
  seed: { type: "string" },
} as const;

export const SAMPLING_FLAGS_HELP = `Sampling options (unset ones come from the model's generation_config.json):
  --max-new-tokens N       tokens to generate at most
  --greedy                 argmax decoding (lowest id on ties); ignores temperature/top-k/top-p
  --temperature T          sampling temperature (0 = greedy)
  --top-k K                keep the K most likely tokens (0 = off)
  --top-p P                nucleus sampling: keep the smallest set with probability ≥ P
  --repetition-penalty R   Hugging Face repetition penalty over prompt + generated ids (1 = off)
  --seed S                 RNG seed for reproducible sampling`;

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export function samplingFromFlags(v: Values): SamplingRequest & { maxNewTokens?: number } {
  const str = (k: string) => v[k] as string | undefined;
  return {
    maxNewTokens: numberFlag(str("max-new-tokens"), "--max-new-tokens", { int: true, min: 1 }),
    greedy: v.greedy === true ? true : undefined,
    temperature: numberFlag(str("temperature"), "--temperature", { min: 0 }),
    topK: numberFlag(str("top-k"), "--top-k", { int: true, min: 0 }),
    topP: numberFlag(str("top-p"), "--top-p", { min: 0, max: 1 }),
    repetitionPenalty: numberFlag(str("repetition-penalty"), "--repetition-penalty", { min: 0.01 }),
    seed: numberFlag(str("seed"), "--seed", { int: true }),
  };
}
