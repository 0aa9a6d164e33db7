/** xverse-ts public API. */
export { XverseError } from "./errors.js";
export * from "./tensor.js";
export * from "./config.js";
export type { Backend, Weight, WeightFormat, AttentionParams } from "./backend/backend.js";
export type { TensorSource, TensorInfo } from "./io/source.js";
export type { Tokenizer, Encoding, EncodeOptions, DecodeOptions, StreamDecoder } from "./tokenizer/types.js";
export { openSafetensors, writeSafetensors } from "./io/safetensors.js";
export type { NamedTensor, LazyNamedTensor, TensorToWrite } from "./io/safetensors.js";
export { openTorchBin } from "./io/torch-bin.js";
export { openCheckpoint, detectCheckpoint, isSkippedTensor } from "./io/checkpoint.js";
export type { CheckpointLayout } from "./io/checkpoint.js";
