/**
 * GGUF files in Node (the layout and the header parser are in gguf-parse.ts, which browsers share).
 * Only the header is read here; tensor bytes are read on demand (readGgufTensorBytes) — views into the mapped file
 * when it was opened with { mmap: true } and the addon can map, else read. Byte-split files (x.gguf.aa, .ab, …)
 * open as one file (io/mapped-file.ts).
 * Every malformed input becomes an XverseError("bad_gguf") naming the file and what is wrong.
 */
import { XverseError } from "../errors.js";
import { badGguf as bad, parseGgufHeader, wrapScalarErrors, type GgufFile, type GgufTensorInfo, type ReadAt } from "./gguf-parse.js";
import { openBytes, type ByteSource, type OpenBytesOptions } from "./mapped-file.js";

export { parseGgufBytes, parseGgufHeader, type GgufFile, type GgufTensorInfo } from "./gguf-parse.js";

/** The bytes behind each GgufFile readGguf returned (not a field: GgufFile stays plain data). */
const SOURCES = new WeakMap<GgufFile, ByteSource>();

/**
 * Parses the header of a GGUF file: metadata, tensor infos, alignment. Tensor data is not read. With
 * `{ mmap: true }` the file is mapped (when the addon can) and readGgufTensorBytes returns views into it.
 */
export function readGguf(path: string, opts: OpenBytesOptions = { mmap: false }): GgufFile {
  const src = openBytes(path, opts);
  const readAt: ReadAt = (dst, off, len, pos) => src.readAt(dst, off, len, pos);
  let file: GgufFile;
  try {
    file = wrapScalarErrors(path, () => parseGgufHeader(readAt, src.size, path));
  } catch (e) {
    // a truncated byte-split file is usually a short last part: say which file that is
    if (src.parts.length > 1 && e instanceof XverseError && /truncated|end of file/.test(e.message)) {
      throw new XverseError(e.code, `${e.message} (byte-split into ${src.parts.length} parts: is the last part, ${src.parts[src.parts.length - 1]}, complete?)`);
    }
    throw e;
  }
  SOURCES.set(file, src);
  return file;
}

/**
 * One tensor's raw bytes (its ggml blocks). Without `into`: a view into the mapping when `file` was opened
 * mapped (read-only memory: never write to it), else a fresh buffer. With `into` (e.g. the bytes of a
 * Float32Array): copied there.
 */
export function readGgufTensorBytes(file: GgufFile, info: GgufTensorInfo, into?: Uint8Array): Uint8Array {
  if (into && into.length !== info.nbytes) throw new Error(`readGgufTensorBytes: buffer of ${into.length} bytes for ${info.nbytes}`);
  const src = SOURCES.get(file) ?? openBytes(file.path, { mmap: false });
  const start = file.dataOffset + info.offset;
  if (start + info.nbytes > src.size) bad(file.path, `tensor "${info.name}" is truncated (file changed since it was opened?)`);
  if (!into) return src.bytes(start, info.nbytes, `tensor "${info.name}"`);
  src.readAt(into, 0, info.nbytes, start);
  return into;
}

/** Drops a tensor's mapped pages from this process once its bytes were copied (q/k rows re-ordered). */
export function releaseGgufTensor(file: GgufFile, info: GgufTensorInfo): void {
  SOURCES.get(file)?.release(file.dataOffset + info.offset, info.nbytes);
}
