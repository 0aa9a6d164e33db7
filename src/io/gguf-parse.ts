/**
 * The GGUF header parser (v2 and v3, little-endian), on bytes only — no file access, so browsers use it too.
 * Layout (ggml's gguf.md):
 *   "GGUF" u32 version, u64 tensor_count, u64 kv_count,
 *   kv_count × (string key, u32 value_type, value),
 *   tensor_count × (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset),
 *   padding to `general.alignment` (default 32), then the tensor data; each offset is relative to that start.
 * Strings are u64 length + UTF-8 bytes; arrays are u32 element type + u64 count + elements.
 * Every malformed input becomes an XverseError("bad_gguf") naming the file and what is wrong.
 * io/gguf.ts opens files with it in Node; browser/load.ts reads Blobs and HTTP ranges.
 */
import { XverseError } from "../errors.js";
import { GGML_TYPES, GGUF_VALUE, GGUF_VALUE_NAMES, GGUF_VALUE_SIZE, type GgmlType } from "../gguf/types.js";

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

/** A malformed-file error naming the file and what is wrong. */
export function badGguf(path: string, what: string): never {
  throw new XverseError("bad_gguf", `${path}: ${what} — the file is not a valid GGUF (corrupt or truncated download?); re-download or re-convert it`);
}

/** `readAt(dst, offset, length, position)` fills part of dst from the file and returns the bytes read. */
export type ReadAt = (dst: Uint8Array, off: number, len: number, pos: number) => number;

// ignoreBOM keeps a leading U+FEFF: it is a real vocabulary token in some files, not a byte-order mark
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** Sequential reader over a file with a refillable window; every read is bounds-checked. */
class Cursor {
  pos = 0;
  private buf = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private bufStart = 0;
  constructor(private readAt: ReadAt, readonly size: number, private path: string) {}

  private need(n: number, what: string): void {
    if (n > this.size - this.pos) badGguf(this.path, `truncated while reading ${what} at byte ${this.pos} (needs ${n} bytes, file has ${this.size})`);
    if (this.pos >= this.bufStart && this.pos + n <= this.bufStart + this.buf.length) return;
    const len = Math.min(Math.max(n, CHUNK), this.size - this.pos);
    const b = new Uint8Array(len);
    let got = 0;
    while (got < len) {
      const r = this.readAt(b, got, len - got, this.pos + got);
      if (r === 0) badGguf(this.path, `unexpected end of file at byte ${this.pos + got}`);
      got += r;
    }
    this.buf = b;
    this.view = new DataView(b.buffer);
    this.bufStart = this.pos;
  }
  // Callers must take the offset before touching this.buf: need() may swap the buffer.
  private at(n: number, what: string): number {
    this.need(n, what);
    const o = this.pos - this.bufStart;
    this.pos += n;
    return o;
  }
  u8(w: string): number { const o = this.at(1, w); return this.view.getUint8(o); }
  i8(w: string): number { const o = this.at(1, w); return this.view.getInt8(o); }
  u16(w: string): number { const o = this.at(2, w); return this.view.getUint16(o, true); }
  i16(w: string): number { const o = this.at(2, w); return this.view.getInt16(o, true); }
  u32(w: string): number { const o = this.at(4, w); return this.view.getUint32(o, true); }
  i32(w: string): number { const o = this.at(4, w); return this.view.getInt32(o, true); }
  f32(w: string): number { const o = this.at(4, w); return this.view.getFloat32(o, true); }
  f64(w: string): number { const o = this.at(8, w); return this.view.getFloat64(o, true); }
  u64big(w: string): bigint { const o = this.at(8, w); return this.view.getBigUint64(o, true); }
  i64big(w: string): bigint { const o = this.at(8, w); return this.view.getBigInt64(o, true); }
  /** A u64 that must be a count or size: rejected when beyond `max` (so it can never drive a huge loop). */
  count(w: string, max: number): number {
    const v = this.u64big(w);
    if (v > BigInt(max)) badGguf(this.path, `${w} is ${v}, more than the ${this.size}-byte file can hold at byte ${this.pos - 8} (truncated or corrupt)`);
    return Number(v);
  }
  string(w: string): string {
    const n = this.count(`length of ${w}`, this.size - this.pos - 8);
    const o = this.at(n, w);
    return utf8.decode(this.buf.subarray(o, o + n));
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
    if (!(type >= 0 && type < GGUF_VALUE_NAMES.length)) badGguf(path, `${w} has unknown value type ${type}`);
    return [readScalar(c, type, w), GGUF_VALUE_NAMES[type]];
  }
  if (depth >= MAX_ARRAY_DEPTH) badGguf(path, `${w}: arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
  const et = c.u32(`element type of ${w}`);
  if (!(et >= 0 && et < GGUF_VALUE_NAMES.length)) badGguf(path, `${w} is an array of unknown value type ${et}`);
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

export function wrapScalarErrors<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof XverseError && e.code === "bad_gguf" && !e.message.startsWith(path)) badGguf(path, e.message);
    throw e;
  }
}

/**
 * Parses a GGUF header held in memory (the whole file, or at least its header when `fileSize` says how long
 * the file is). `name` is used in errors and as GgufFile.path.
 */
export function parseGgufBytes(bytes: Uint8Array, name: string, fileSize = bytes.length): GgufFile {
  const readAt: ReadAt = (dst, off, len, pos) => {
    const part = bytes.subarray(pos, Math.min(pos + len, bytes.length));
    dst.set(part, off);
    return part.length;
  };
  return wrapScalarErrors(name, () => parseGgufHeader(readAt, fileSize, name));
}

/** Parses the header through `readAt` (a file in Node, bytes in memory anywhere). */
export function parseGgufHeader(readAt: ReadAt, size: number, path: string): GgufFile {
  const c = new Cursor(readAt, size, path);
  if (size < 4) badGguf(path, `only ${size} bytes long`);
  const magic = c.u32("magic");
  if (magic !== MAGIC) {
    const head = String.fromCharCode(magic & 0xff, (magic >>> 8) & 0xff, (magic >>> 16) & 0xff, magic >>> 24);
    badGguf(path, `bad magic ${JSON.stringify(head)} (expected "GGUF")`);
  }
  const version = c.u32("version");
  if (version === 1) throw new XverseError("unsupported", `${path}: GGUF version 1 (2023 pre-release format) is not supported; re-convert with a current llama.cpp`);
  if (version !== 2 && version !== 3) {
    // A byte-swapped version means a big-endian file (GGUF v3 allows those); we read little-endian only.
    const hint = (version & 0xffff) === 0 ? " (looks like a big-endian file, which is not supported)" : "";
    badGguf(path, `unsupported version ${version}${hint} (expected 2 or 3)`);
  }
  // A tensor info takes ≥ 24 bytes, a kv ≥ 13, which bounds both counts by the file size.
  const nTensors = c.count("tensor count", Math.floor((size - 24) / 24));
  const nKv = c.count("metadata count", Math.floor((size - 24) / 13));

  const metadata: Record<string, unknown> = Object.create(null);
  const metadataTypes: Record<string, string> = Object.create(null);
  for (let i = 0; i < nKv; i++) {
    const key = c.string(`key of metadata entry ${i}`);
    if (key in metadata) badGguf(path, `metadata key "${key}" appears twice`);
    const type = c.u32(`value type of "${key}"`);
    const [v, tn] = readValue(c, type, `metadata "${key}"`, 0, path);
    metadata[key] = v;
    metadataTypes[key] = tn;
  }

  let alignment = 32;
  if ("general.alignment" in metadata) {
    const a = metadata["general.alignment"];
    if (metadataTypes["general.alignment"] !== "UINT32" || typeof a !== "number" || a === 0 || (a & (a - 1)) !== 0) {
      badGguf(path, `general.alignment must be a UINT32 power of two, got ${String(a)} (${metadataTypes["general.alignment"]})`);
    }
    alignment = a;
  }

  const tensors: GgufTensorInfo[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string(`name of tensor ${i}`);
    if (seen.has(name)) badGguf(path, `tensor "${name}" appears twice`);
    seen.add(name);
    const nDims = c.u32(`dimension count of tensor "${name}"`);
    if (nDims < 1 || nDims > 4) badGguf(path, `tensor "${name}" has ${nDims} dimensions (ggml allows 1 to 4)`);
    const dims: number[] = [];
    let nel = 1;
    for (let d = 0; d < nDims; d++) {
      const ne = c.count(`dimension ${d} of tensor "${name}"`, Number.MAX_SAFE_INTEGER);
      dims.push(ne);
      nel *= ne;
    }
    if (!Number.isSafeInteger(nel)) badGguf(path, `tensor "${name}" dims [${dims}] overflow`);
    const type = c.u32(`type of tensor "${name}"`);
    const t: GgmlType | undefined = GGML_TYPES.get(type);
    if (!t) throw new XverseError("unsupported", `${path}: tensor "${name}" has unknown ggml type ${type}; this reader knows ${[...GGML_TYPES.values()].map((x) => x.name).join(", ")} — the file may come from a newer llama.cpp`);
    if (dims[0] % t.blockSize !== 0) badGguf(path, `tensor "${name}" row length ${dims[0]} is not a multiple of the ${t.name} block size ${t.blockSize}`);
    const offset = c.count(`offset of tensor "${name}"`, size);
    if (offset % alignment !== 0) badGguf(path, `tensor "${name}" offset ${offset} is not a multiple of the alignment ${alignment}`);
    tensors.push({ name, type, typeName: t.name, dims, shape: [...dims].reverse(), offset, nelements: nel, nbytes: (nel / t.blockSize) * t.typeSize });
  }

  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  // Tensor data must lie inside the file and not overlap (llama.cpp also requires this).
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (const t of byOffset) {
    if (t.offset < end) badGguf(path, `tensor "${t.name}" at offset ${t.offset} overlaps the previous tensor (ends at ${end})`);
    end = t.offset + t.nbytes;
    if (dataOffset + end > size) badGguf(path, `tensor "${t.name}" (${t.typeName} [${t.dims}], ${t.nbytes} bytes at data offset ${t.offset}) runs past the end of the file (${size} bytes): truncated`);
  }
  return { path, version, metadata, metadataTypes, tensors, alignment, dataOffset, fileSize: size };
}

