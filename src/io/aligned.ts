export type Aligned = Float32Array | Uint16Array;
/**
 * `bytes` as f32 or 16-bit elements: a view when the address allows it (GGUF data is 32-byte aligned in the
 * file, but a byte-split part may start anywhere), else a copy.
 */
export function alignedView(bytes: Uint8Array, kind: "f32" | "u16"): Aligned {
  const size = kind === "f32" ? 4 : 2;
  if (bytes.length % size !== 0) throw new Error(`alignedView: ${bytes.length} bytes is not a whole number of ${size}-byte elements`);
  const Ctor = kind === "f32" ? Float32Array : Uint16Array;
  if (bytes.byteOffset % size === 0) return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.length / size);
  const out = new Ctor(bytes.length / size);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}
