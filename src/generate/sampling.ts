/**
 * One rule for "what the user asked" + generation_config.json → generate() sampling options, shared by the CLI,
 * chat() and the server: naming any of temperature / top-k / top-p turns sampling on; otherwise the model's
 * do_sample decides; temperature 0 means greedy. Unset values come from generation_config.
 */
import type { GenerationConfig } from "../config.js";

/** The sampling knobs (HF names, camelCase). */
export interface SamplingRequest {
  /** Greedy decoding (argmax, lowest id on ties). Default: sample when temperature/topK/topP are given. */
  greedy?: boolean;
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
  /** OpenAI's presence / frequency penalties (−2 … 2) and logit_bias (penalties.ts); not from generation_config. */
  presencePenalty?: number;
  frequencyPenalty?: number;
  logitBias?: Readonly<Record<number, number>>;
}

export function samplingOptions(req: SamplingRequest, gc?: GenerationConfig): SamplingRequest {
  const picked = req.temperature !== undefined || req.topK !== undefined || req.topP !== undefined;
  const greedy = req.greedy ?? (req.temperature === 0 || (!picked && !(gc?.doSample ?? false)));
  return {
    greedy,
    temperature: greedy ? undefined : req.temperature ?? gc?.temperature,
    topK: greedy ? undefined : req.topK ?? gc?.topK,
    topP: greedy ? undefined : req.topP ?? gc?.topP,
    repetitionPenalty: req.repetitionPenalty ?? gc?.repetitionPenalty,
    seed: req.seed,
    presencePenalty: req.presencePenalty,
    frequencyPenalty: req.frequencyPenalty,
    logitBias: req.logitBias,
  };
}
