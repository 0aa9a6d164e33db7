/**
 * Load progress for a TensorSource: bytes of the tensors read so far, of all the source holds. (GGUF files count
 * the bytes they hand out instead — io/gguf-model.ts — because quantized projections bypass `read`.)
 */
import { DTYPE_BYTES, numel } from "../tensor.js";
import type { TensorSource } from "./source.js";

/** Total bytes of a source's tensors, as read (dtype × elements). */
export function sourceBytes(src: TensorSource): number {
  let n = 0;
  for (const name of src.names()) {
    const i = src.info(name);
    n += numel(i.shape) * DTYPE_BYTES[i.dtype];
  }
  return n;
}

/** `src` with `onProgress(done, total)` called after every read. */
export function withReadProgress(src: TensorSource, onProgress: (done: number, total: number) => void, total = sourceBytes(src)): TensorSource {
  let done = 0;
  return {
    ...src,
    names: () => src.names(),
    has: (n) => src.has(n),
    info: (n) => src.info(n),
    read: (n) => {
      const t = src.read(n);
      done = Math.min(total, done + t.data.byteLength);
      onProgress(done, total);
      return t;
    },
    metadata: src.metadata ? () => src.metadata!() : undefined,
    close: () => src.close(),
  };
}
