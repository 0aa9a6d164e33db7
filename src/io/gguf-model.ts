/**
 * A llama.cpp GGUF file (architecture `xverse` or `llama`) as our model's inputs: a config.json-style object
 * for parseConfig, a TensorSource with Hugging Face names, and the raw metadata for the tokenizer.
 * Tensors are dequantized to f32 on read (F16 stays f16, BF16 stays bf16), and q/k rows are permuted back from
 * llama.cpp's adjacent-pair RoPE layout to HF rotate-half, so the model runs them with its normal RoPE.
 * The file is mapped (io/mapped-file.ts): F32/F16/BF16 tensors read as views into it, not copies; q/k rows
 * are permuted into a copy (the mapping is read-only).
 */
import { XverseError } from "../errors.js";
import type { Tensor } from "../tensor.js";
import { readGgufTensorBytes, releaseGgufTensor, type GgufFile, type GgufTensorInfo } from "./gguf.js";
import { decodeGgufTensor, ggufConfig, ggufDtype, ggufHfNames } from "./gguf-tensors.js";
import { fitsInRam } from "./mapped-file.js";
import { readGgufParts } from "./gguf-split.js";
import type { TensorInfo, TensorSource } from "./source.js";

export { ggufConfig } from "./gguf-tensors.js";

export interface GgufModel {
  /** config.json-style object (HF field names) for parseConfig. */
  config: Record<string, unknown>;
  /** Tensors under HF names. */
  source: TensorSource;
  /** All GGUF key/values (tokenizer.ggml.* for tokenizerFromGguf). */
  metadata: Record<string, unknown>;
  /** The file (the first part of a split model). */
  file: GgufFile;
  /** The GGUF tensor (and the file or split part holding it) behind an HF name, for loaders that use the
   *  blocks directly (Q4_0 → q4_group). */
  tensorFor(hfName: string): { file: GgufFile; info: GgufTensorInfo } | undefined;
}

export interface GgufOpenOptions {
  /**
   * What quantized tensors are dequantized to: "f32" (default, exact) or "f16" (half the memory; rounding
   * ≤ 2^-11 relative). F16 and BF16 tensors are always kept as stored.
   */
  floatType?: "f32" | "f16";
  /** Map the file (default true; falls back to reading when the native addon is not built). */
  mmap?: boolean;
  /**
   * Bytes of tensor data handed out so far and in all (every part), after each tensor: load progress. With a
   * mapping that fits in RAM, each tensor is read from disk when it is handed out, so this tracks the real I/O.
   */
  onProgress?: (done: number, total: number) => void;
}


/** Opens a GGUF model: header and config now, tensor bytes lazily. */
export function openGgufModel(path: string, opts: GgufOpenOptions = {}): GgufModel {
  let done = 0, total = 0;
  const onRead = opts.onProgress && ((n: number) => {
    done = Math.min(total, done + n);
    opts.onProgress!(done, total);
  });
  // openBytes reads `populate` when it hands bytes out, so it can be decided once the sizes are known
  const bytesOpts = { mmap: opts.mmap !== false, populate: false, onRead };
  const parts = readGgufParts(path, bytesOpts);
  total = parts.reduce((n, p) => n + p.tensors.reduce((m, t) => m + t.nbytes, 0), 0);
  bytesOpts.populate = fitsInRam(total);
  const file = parts[0];
  const config = ggufConfig(file, parts.flatMap((p) => p.tensors));
  const heads = config.num_attention_heads as number;
  const kvHeads = config.num_key_value_heads as number;

  const byHf = ggufHfNames(parts);

  const dtypeOf = (t: GgufTensorInfo) => ggufDtype(t, opts.floatType);
  const get = (name: string): GgufTensorInfo => {
    const t = byHf.get(name);
    if (!t) throw new XverseError("bad_checkpoint", `tensor ${name} is not in ${path}`);
    return t.info;
  };
  const partOf = (name: string): GgufFile => byHf.get(name)!.file;

  const source: TensorSource = {
    names: () => [...byHf.keys()],
    has: (name) => byHf.has(name),
    info: (name): TensorInfo => {
      const t = get(name);
      return { name, dtype: dtypeOf(t), shape: [...t.shape], file: partOf(name).path };
    },
    read: (name): Tensor => {
      const t = get(name), part = partOf(name);
      let bytes: Uint8Array | undefined;
      const tensor = decodeGgufTensor(name, t, () => (bytes = readGgufTensorBytes(part, t)), { path: part.path, heads, kvHeads, floatType: opts.floatType });
      // copied (re-ordered, dequantized, or across a part boundary): the mapped pages are not read again
      if (bytes && tensor.data.buffer !== bytes.buffer) releaseGgufTensor(part, t);
      return tensor;
    },
    metadata: () => file.metadata,
    close: () => {},
  };
  return { config, source, metadata: file.metadata, file, tensorFor: (n) => byHf.get(n) };
}
