/**
 * GGUF reader (v2 and v3, little-endian). Layout (ggml's gguf.md):
 *   "GGUF" u32 version, u64 tensor_count, u64 kv_count,
 *   kv_count × (string key, u32 value_type, value),
 *   tensor_count × (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset),
 *   padding to `general.alignment` (default 32), then the tensor data; each offset is relative to that start.
 * Strings are u64 length + UTF-8 bytes; arrays are u32 element type + u64 count + elements.
 * Only the header is read here; tensor bytes are read on demand (readGgufTensorBytes) — views into the mapped file
 * when it was opened with { mmap: true } and the addon can map, else read. Byte-split files (x.gguf.aa, .ab, …)
 * open as one file (io/mapped-file.ts).
 * Every malformed input becomes an XverseError("bad_gguf") naming the file and what is wrong.
 */
import { XverseError } from "../errors.js";
import { GGML_TYPES, GGUF_VALUE, GGUF_VALUE_NAMES, GGUF_VALUE_SIZE, type GgmlType } from "../gguf/types.js";
import { openBytes, type ByteSource, type OpenBytesOptions } from "./mapped-file.js";

export interface GgufTensorInfo {
  name: string;
  /** ggml type id and its name ("Q4_K"). */
  type: number;
  typeName: string;
  /** ggml order: dims[0] is the fastest-varying (row length). */
  dims: number[];
  /** Row-major shape (dims reversed), e.g. [rows, cols] for a matrix. */
  shape: number[];
  /** Offset relative to dataOffset. */
  offset: number;
  nelements: number;
  nbytes: number;
}

export interface GgufFile {
  path: string;
  version: number;
  /** Key → value: numbers, bigint (64-bit values beyond 2^53), booleans, strings, (nested) arrays. */
  metadata: Record<string, unknown>;
  /** Key → GGUF value type name ("UINT32", "ARRAY[STRING]"), so a writer can reproduce types. */
  metadataTypes: Record<string, string>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute file offset where tensor data starts. */
  dataOffset: number;
  fileSize: number;
}

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const CHUNK = 1 << 20;
// Headers of real files are a few MB (a 150K-token vocab); nesting beyond this is malformed, not a model.
const MAX_ARRAY_DEPTH = 8;

function bad(path: string, what: string): never {
  throw new XverseError("bad_gguf", `${path}: ${what} — the file is not a valid GGUF (corrupt or truncated download?); re-download or re-convert it`);
}

/** Sequential reader over a file descriptor with a refillable window; every read is bounds-checked. */
class Cursor {
  pos = 0;
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  /** `readAt(dst, offset, length, position)` fills part of dst from the file and returns the bytes read. */
  constructor(private readAt: (dst: Buffer, off: number, len: number, pos: number) => number, readonly size: number, private path: string) {}

  private need(n: number, what: string): void {
    if (n > this.size - this.pos) bad(this.path, `truncated while reading ${what} at byte ${this.pos} (needs ${n} bytes, file has ${this.size})`);
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length) return;
    const len = Math.min(Math.max(n, CHUNK), this.size - this.pos);
    const b = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) {
      const r = this.readAt(b, got, len - got, this.pos + got);
      if (r === 0) bad(this.path, `unexpected end of file at byte ${this.pos + got}`);
      got += r;
    }
    this.buf = b;
    this.bufStart = this.pos;
  }
  // Callers must take the offset before touching this.buf: need() may swap the buffer.
  private at(n: number, what: string): number {
    this.need(n, what);
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }
  u8(w: string): number { const o = this.at(1, w); return this.buf.readUInt8(o); }
  i8(w: string): number { const o = this.at(1, w); return this.buf.readInt8(o); }
  u16(w: string): number { const o = this.at(2, w); return this.buf.readUInt16LE(o); }
  i16(w: string): number { const o = this.at(2, w); return this.buf.readInt16LE(o); }
  u32(w: string): number { const o = this.at(4, w); return this.buf.readUInt32LE(o); }
  i32(w: string): number { const o = this.at(4, w); return this.buf.readInt32LE(o); }
  f32(w: string): number { const o = this.at(4, w); return this.buf.readFloatLE(o); }
  f64(w: string): number { const o = this.at(8, w); return this.buf.readDoubleLE(o); }
  u64big(w: string): bigint { const o = this.at(8, w); return this.buf.readBigUInt64LE(o); }
  i64big(w: string): bigint { const o = this.at(8, w); return this.buf.readBigInt64LE(o); }
  /** A u64 that must be a count or size: rejected when beyond `max` (so it can never drive a huge loop). */
  count(w: string, max: number): number {
    const v = this.u64big(w);
    if (v > BigInt(max)) bad(this.path, `${w} is ${v}, more than the ${this.size}-byte file can hold at byte ${this.pos - 8} (truncated or corrupt)`);
    return Number(v);
  }
  string(w: string): string {
    const n = this.count(`length of ${w}`, this.size - this.pos - 8);
    const o = this.at(n, w);
    return this.buf.toString("utf8", o, o + n);
  }
}

function int64(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function readScalar(c: Cursor, type: number, w: string): unknown {
  switch (type) {
    case GGUF_VALUE.UINT8: return c.u8(w);
    case GGUF_VALUE.INT8: return c.i8(w);
    case GGUF_VALUE.UINT16: return c.u16(w);
    case GGUF_VALUE.INT16: return c.i16(w);
    case GGUF_VALUE.UINT32: return c.u32(w);
    case GGUF_VALUE.INT32: return c.i32(w);
    case GGUF_VALUE.FLOAT32: return c.f32(w);
    case GGUF_VALUE.BOOL: {
      const b = c.u8(w);
      if (b > 1) throw new XverseError("bad_gguf", `${w}: a BOOL must be 0 or 1, got ${b}`);
      return b === 1;
    }
    case GGUF_VALUE.STRING: return c.string(w);
    case GGUF_VALUE.UINT64: return int64(c.u64big(w));
    case GGUF_VALUE.INT64: return int64(c.i64big(w));
    case GGUF_VALUE.FLOAT64: return c.f64(w);
  }
  throw new XverseError("bad_gguf", `${w}: unknown metadata value type ${type}`);
}

/** Reads one value of `type`; returns it and its type name (for arrays "ARRAY[elem]"). */
function readValue(c: Cursor, type: number, w: string, depth: number, path: string): [unknown, string] {
  if (type !== GGUF_VALUE.ARRAY) {
    if (!(type >= 0 && type < GGUF_VALUE_NAMES.length)) bad(path, `${w} has unknown value type ${type}`);
    return [readScalar(c, type, w), GGUF_VALUE_NAMES[type]];
  }
  if (depth >= MAX_ARRAY_DEPTH) bad(path, `${w}: arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
  const et = c.u32(`element type of ${w}`);
  if (!(et >= 0 && et < GGUF_VALUE_NAMES.length)) bad(path, `${w} is an array of unknown value type ${et}`);
  // Every element takes at least 1 byte (strings and arrays at least 8), so the count is bounded by what is left.
  const minSize = GGUF_VALUE_SIZE[et] || (et === GGUF_VALUE.ARRAY ? 12 : 8);
  const n = c.count(`element count of ${w}`, Math.floor((c.size - c.pos - 8) / minSize));
  const out: unknown[] = new Array(n);
  let elemName = GGUF_VALUE_NAMES[et];
  for (let i = 0; i < n; i++) {
    const [v, name] = readValue(c, et, w, depth + 1, path);
    out[i] = v;
    elemName = name;
  }
  return [out, `ARRAY[${elemName}]`];
}

function wrapScalarErrors<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof XverseError && e.code === "bad_gguf" && !e.message.startsWith(path)) bad(path, e.message);
    throw e;
  }
}

/** The bytes behind each GgufFile readGguf returned (not a field: GgufFile stays plain data). */
const SOURCES = new WeakMap<GgufFile, ByteSource>();

/**
 * Parses the header of a GGUF file: metadata, tensor infos, alignment. Tensor data is not read. With
 * `{ mmap: true }` the file is mapped (when the addon can) and readGgufTensorBytes returns views into it.
 */
export function readGguf(path: string, opts: OpenBytesOptions = { mmap: false }): GgufFile {
  const src = openBytes(path, opts);
  const readAt = (dst: Buffer, off: number, len: number, pos: number) => src.readAt(dst, off, len, pos);
  let file: GgufFile;
  try {
    file = wrapScalarErrors(path, () => parseHeader(readAt, src.size, path));
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
 * Parses a GGUF header held in memory (the whole file, or at least its header when `fileSize` says how long
 * the file is). `name` is used in errors and as GgufFile.path.
 */
export function parseGgufBytes(bytes: Uint8Array, name: string, fileSize = bytes.length): GgufFile {
  const src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const readAt = (dst: Buffer, off: number, len: number, pos: number): number => src.copy(dst, off, pos, Math.min(pos + len, src.length));
  return wrapScalarErrors(name, () => parseHeader(readAt, fileSize, name));
}

function parseHeader(readAt: (dst: Buffer, off: number, len: number, pos: number) => number, size: number, path: string): GgufFile {
  const c = new Cursor(readAt, size, path);
  if (size < 4) bad(path, `only ${size} bytes long`);
  const magic = c.u32("magic");
  if (magic !== MAGIC) {
    const head = Buffer.alloc(4);
    head.writeUInt32LE(magic);
    bad(path, `bad magic ${JSON.stringify(head.toString("latin1"))} (expected "GGUF")`);
  }
  const version = c.u32("version");
  if (version === 1) throw new XverseError("unsupported", `${path}: GGUF version 1 (2023 pre-release format) is not supported; re-convert with a current llama.cpp`);
  if (version !== 2 && version !== 3) {
    // A byte-swapped version means a big-endian file (GGUF v3 allows those); we read little-endian only.
    const hint = (version & 0xffff) === 0 ? " (looks like a big-endian file, which is not supported)" : "";
    bad(path, `unsupported version ${version}${hint} (expected 2 or 3)`);
  }
  // A tensor info takes ≥ 24 bytes, a kv ≥ 13, which bounds both counts by the file size.
  const nTensors = c.count("tensor count", Math.floor((size - 24) / 24));
  const nKv = c.count("metadata count", Math.floor((size - 24) / 13));

  const metadata: Record<string, unknown> = Object.create(null);
  const metadataTypes: Record<string, string> = Object.create(null);
  for (let i = 0; i < nKv; i++) {
    const key = c.string(`key of metadata entry ${i}`);
    if (key in metadata) bad(path, `metadata key "${key}" appears twice`);
    const type = c.u32(`value type of "${key}"`);
    const [v, tn] = readValue(c, type, `metadata "${key}"`, 0, path);
    metadata[key] = v;
    metadataTypes[key] = tn;
  }

  let alignment = 32;
  if ("general.alignment" in metadata) {
    const a = metadata["general.alignment"];
    if (metadataTypes["general.alignment"] !== "UINT32" || typeof a !== "number" || a === 0 || (a & (a - 1)) !== 0) {
      bad(path, `general.alignment must be a UINT32 power of two, got ${String(a)} (${metadataTypes["general.alignment"]})`);
    }
    alignment = a;
  }

  const tensors: GgufTensorInfo[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string(`name of tensor ${i}`);
    if (seen.has(name)) bad(path, `tensor "${name}" appears twice`);
    seen.add(name);
    const nDims = c.u32(`dimension count of tensor "${name}"`);
    if (nDims < 1 || nDims > 4) bad(path, `tensor "${name}" has ${nDims} dimensions (ggml allows 1 to 4)`);
    const dims: number[] = [];
    let nel = 1;
    for (let d = 0; d < nDims; d++) {
      const ne = c.count(`dimension ${d} of tensor "${name}"`, Number.MAX_SAFE_INTEGER);
      dims.push(ne);
      nel *= ne;
    }
    if (!Number.isSafeInteger(nel)) bad(path, `tensor "${name}" dims [${dims}] overflow`);
    const type = c.u32(`type of tensor "${name}"`);
    const t: GgmlType | undefined = GGML_TYPES.get(type);
    if (!t) throw new XverseError("unsupported", `${path}: tensor "${name}" has unknown ggml type ${type}; this reader knows ${[...GGML_TYPES.values()].map((x) => x.name).join(", ")} — the file may come from a newer llama.cpp`);
    if (dims[0] % t.blockSize !== 0) bad(path, `tensor "${name}" row length ${dims[0]} is not a multiple of the ${t.name} block size ${t.blockSize}`);
    const offset = c.count(`offset of tensor "${name}"`, size);
    if (offset % alignment !== 0) bad(path, `tensor "${name}" offset ${offset} is not a multiple of the alignment ${alignment}`);
    tensors.push({ name, type, typeName: t.name, dims, shape: [...dims].reverse(), offset, nelements: nel, nbytes: (nel / t.blockSize) * t.typeSize });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  // Tensor data must lie inside the file and not overlap (llama.cpp also requires this).
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const t of byOffset) {
    if (t.offset < end) bad(path, `tensor "${t.name}" at offset ${t.offset} overlaps the previous tensor (ends at ${end})`);
    end = t.offset + t.nbytes;
    if (dataOffset + end > size) bad(path, `tensor "${t.name}" (${t.typeName} [${t.dims}], ${t.nbytes} bytes at data offset ${t.offset}) runs past the end of the file (${size} bytes): truncated`);
  }
  return { path, version, metadata, metadataTypes, tensors, alignment, dataOffset, fileSize: size };
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
