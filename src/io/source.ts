import type { DType, Tensor } from "../tensor.js";

/** What a checkpoint says about one tensor before its bytes are read. */
export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** The file it lives in, for error messages. */
  file: string;
}

/**
 * A lazily read collection of named tensors (one safetensors file, a sharded directory, torch .bin shards, GGUF).
 * `read` loads one tensor's bytes at a time, so a 13B checkpoint is never held twice in memory.
 */
export interface TensorSource {
  /** Tensor names in file order. */
  names(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** Reads one tensor, contiguous row-major. Throws XverseError naming the tensor and file on bad data. */
  read(name: string): Tensor;
  /** File-level metadata (safetensors __metadata__, GGUF key/values), if any. */
  metadata?(): Record<string, unknown>;
  close(): void;
}
