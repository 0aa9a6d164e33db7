/**
 * Quantized weights on disk (what `xverse quantize` writes and the loader reads back).
 *
 * Following the official XVERSE QuantizedLinear state dict (xverse-facts §5a), a quantized projection
 * `P.weight` is stored as two tensors:
 *   - `P.weight`        int8 (I8). int8: [out, in], one value per byte.
 *                       int4: [out, in/2], two values per byte in backend.ts order — byte j of a row holds
 *                       column 2j in the LOW nibble and 2j+1 in the HIGH nibble (two's complement, [-7, 7]).
 *   - `P.weight_scale`  float32. Per row: [out]. Group-wise int4: [out, in/groupSize] (row-major).
 * config.json carries `quantization_bit` (4 | 8) and, for group-wise int4, `quantization_group_size`.
 * The safetensors __metadata__ carries QUANT_METADATA so a reader can tell our nibble order from another tool's.
 * Everything else (embeddings, norms, lm_head) stays in the checkpoint's own dtype.
 */
import { XverseError } from "../errors.js";
import type { Weight } from "../backend/backend.js";
import { toFloat32, type Tensor } from "../tensor.js";
import type { TensorSource } from "../io/source.js";

/** __metadata__ entries written next to quantized tensors. */
export const QUANT_METADATA: Readonly<Record<string, string>> = Object.freeze({
  format: "pt",
  "xverse_ts.quant_version": "1",
  "xverse_ts.int4_packing": "low_nibble_even_column",
});

/** The seven projections of every decoder layer that XVERSE quantizes (HF names). */
const PROJECTION_RE = /^model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/;

/** True for `model.layers.N.{self_attn.{q,k,v,o}_proj, mlp.{gate,up,down}_proj}.weight`. */
export function isQuantizedProjection(name: string): boolean {
  return PROJECTION_RE.test(name);
}

/** The scale tensor's name for a weight name: `…weight` → `…weight_scale`. */
export function scaleName(weightName: string): string {
  return `${weightName}_scale`;
}

/** A quantized Weight as the two tensors stored on disk (views over the Weight's arrays, no copy). */
export function weightToTensors(w: Weight): { weight: Tensor; scale: Tensor } {
  const { rows, cols } = w;
  const bytes = w.data;
  switch (w.format) {
    case "q8_row":
      return {
        weight: { dtype: "i8", shape: [rows, cols], data: w.data as Int8Array },
        scale: { dtype: "f32", shape: [rows], data: w.scales! },
      };
    case "q4_row":
    case "q4_group": {
      const i8 = new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const scaleShape = w.format === "q4_row" ? [rows] : [rows, cols / w.groupSize!];
      return {
        weight: { dtype: "i8", shape: [rows, cols / 2], data: i8 },
        scale: { dtype: "f32", shape: scaleShape, data: w.scales! },
      };
    }
    default:
      throw new XverseError("bad_argument", `weightToTensors: ${w.format} is not a quantized format`);
  }
}

/** What a quantized checkpoint must hold, from its config.json. */
export interface QuantSpec {
  bits: 4 | 8;
  /** 0 = one scale per row. */
  groupSize: number;
}

/**
 * The two stored tensors back to a Weight. `name` (the weight's name) is only for error messages.
 * Scales stored as f16 / bf16 (other tools) are widened to f32.
 */
export function weightFromTensors(weight: Tensor, scale: Tensor, spec: QuantSpec, name: string): Weight {
  if (weight.dtype !== "i8" && weight.dtype !== "u8") {
    throw new XverseError("bad_checkpoint", `${name}: a quantized weight must be int8, got ${weight.dtype} (is quantization_bit in config.json right?)`);
  }
  if (weight.shape.length !== 2) {
    throw new XverseError("bad_checkpoint", `${name}: expected a 2-D quantized weight, got shape [${weight.shape.join(", ")}]`);
  }
  const rows = weight.shape[0];
  const cols = spec.bits === 8 ? weight.shape[1] : weight.shape[1] * 2;
  const s = scale.dtype === "f32" ? (scale.data as Float32Array) : toFloat32(scale);
  const d = weight.data as Int8Array | Uint8Array;
  const expectScales = spec.groupSize ? [rows, cols / spec.groupSize] : [rows];
  const shapeOk = scale.shape.length === expectScales.length && scale.shape.every((v, i) => v === expectScales[i]);
  if (!shapeOk || (spec.groupSize && cols % spec.groupSize !== 0)) {
    throw new XverseError("bad_checkpoint",
      `${scaleName(name)}: expected shape [${expectScales.join(", ")}] for int${spec.bits}` +
        `${spec.groupSize ? ` with group size ${spec.groupSize}` : " per row"}, got [${scale.shape.join(", ")}]`);
  }
  if (spec.bits === 8) {
    if (spec.groupSize) throw new XverseError("bad_config", `${name}: group-wise quantization is int4 only, but quantization_bit is 8`);
    const data = d instanceof Int8Array ? d : new Int8Array(d.buffer, d.byteOffset, d.byteLength);
    return { format: "q8_row", rows, cols, data, scales: s };
  }
  const data = d instanceof Uint8Array ? d : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (spec.groupSize) return { format: "q4_group", rows, cols, data, scales: s, groupSize: spec.groupSize };
  return { format: "q4_row", rows, cols, data, scales: s };
}

/** Reads one pre-quantized projection (`name` = `….weight`) from a quantized checkpoint. */
export function readQuantizedWeight(source: TensorSource, name: string, spec: QuantSpec): Weight {
  const sn = scaleName(name);
  if (!source.has(sn)) {
    throw new XverseError("bad_checkpoint",
      `${name}: config.json says quantization_bit ${spec.bits} but the checkpoint has no ${sn} (was it written by \`xverse quantize\`?)`);
  }
  return weightFromTensors(source.read(name), source.read(sn), spec, name);
}
