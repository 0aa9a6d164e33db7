/**
 * The loader's hook for the seven projections (WeightLoadOptions.projection in model/weights.ts):
 * a checkpoint that config.json marks quantized is read as stored (weight + weight_scale); a float checkpoint
 * loaded with `quantize` is quantized one tensor at a time, so the float copy of a layer is garbage as soon as
 * its Weight exists (a 13B bf16 checkpoint never sits in memory whole).
 */
import type { Weight } from "../backend/backend.js";
import type { XverseConfig } from "../config.js";
import { XverseError } from "../errors.js";
import type { TensorSource } from "../io/source.js";
import { readQuantizedWeight } from "./disk.js";
import { quantizeWeight } from "./quantize.js";

export interface QuantLoadOptions {
  /** Quantize float projections while loading: 0 (default) keeps them as stored. */
  quantize?: 0 | 4 | 8;
  /** Group size for int4 (0 = one scale per row, XVERSE's scheme). */
  groupSize?: number;
}

export type ProjectionHook = (name: string, source: TensorSource, rows: number, cols: number) => Weight | null;

/**
 * Returns the projection hook for this config and these options, or undefined when projections load as plain
 * float weights. Throws when a quantized checkpoint is asked to be quantized differently.
 */
export function projectionLoader(cfg: XverseConfig, opts: QuantLoadOptions = {}): ProjectionHook | undefined {
  const want = opts.quantize ?? 0;
  const groupSize = opts.groupSize ?? 0;
  if (cfg.quantizationBit) {
    const spec = { bits: cfg.quantizationBit as 4 | 8, groupSize: cfg.quantizationGroupSize };
    if (want && (want !== spec.bits || groupSize !== spec.groupSize)) {
      throw new XverseError("bad_flag",
        `this checkpoint is already quantized (int${spec.bits}${spec.groupSize ? `, group ${spec.groupSize}` : ""}); ` +
          `load it without --quantize, or quantize the original float checkpoint instead`);
    }
    return (name, source, rows, cols) => checked(readQuantizedWeight(source, name, spec), name, rows, cols);
  }
  if (!want) {
    if (groupSize) throw new XverseError("bad_flag", `--group-size ${groupSize} needs --quantize 4`);
    return undefined;
  }
  if (want !== 4 && want !== 8) throw new XverseError("bad_flag", `--quantize must be 4 or 8, got ${String(want)}`);
  return (name, source, rows, cols) => {
    const t = source.read(name);
    if (t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== cols) {
      throw new XverseError("bad_checkpoint", `tensor ${name} in ${source.info(name).file} has shape [${t.shape}], expected [${rows}, ${cols}] from config.json`);
    }
    return quantizeWeight(t, want, groupSize);
  };
}

function checked(w: Weight, name: string, rows: number, cols: number): Weight {
  if (w.rows !== rows || w.cols !== cols) {
    throw new XverseError("bad_checkpoint", `quantized tensor ${name} holds a [${w.rows}, ${w.cols}] matrix, expected [${rows}, ${cols}] from config.json`);
  }
  return w;
}
