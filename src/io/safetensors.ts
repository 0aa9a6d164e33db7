/**
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}), then the data area.
 * Offsets are relative to the data area. The reader validates the whole header up front and reads each tensor's
 * bytes only when asked; the writer writes to a temp name and renames, so a failure never leaves a partial file.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { XverseError } from "../errors.js";
import { DTYPE_BYTES, numel, type DType, type Tensor, type TensorData } from "../tensor.js";
import type { TensorInfo, TensorSource } from "./source.js";
import { AtomicFile } from "./atomic.js";
import { alignedView, openBytes, type ByteSource, type OpenBytesOptions } from "./mapped-file.js";

/** safetensors dtype strings ↔ our dtypes. */
export const ST_TO_DTYPE: Readonly<Record<string, DType>> = {
  F32: "f32", F16: "f16", BF16: "bf16", F64: "f64",
  I8: "i8", U8: "u8", I16: "i16", I32: "i32", I64: "i64", BOOL: "bool",
};
export const DTYPE_TO_ST: Readonly<Record<DType, string>> = {
  f32: "F32", f16: "F16", bf16: "BF16", f64: "F64",
  i8: "I8", u8: "U8", i16: "I16", i32: "I32", i64: "I64", bool: "BOOL",
};

/** The safetensors reference implementation refuses headers over 100 MB; so do we (a corrupt length is the usual cause). */
const MAX_HEADER_BYTES = 100_000_000;

export function assertLittleEndianHost(): void {
  if (endianness() !== "LE") {
    throw new XverseError("unsupported", "checkpoint files are little-endian and this machine is big-endian; this is not supported");
  }
}

/**
 * A zero-filled typed array of `n` elements of `dtype`, on its own (therefore aligned) ArrayBuffer.
 * `what` names the tensor in the error when the allocation fails (out of memory, or over V8's 2^32-element limit).
 */
export function allocTensorData(dtype: DType, n: number, what = "tensor"): TensorData {
  try {
    return allocRaw(dtype, n);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new XverseError("out_of_memory",
      `${what}: cannot allocate ${n} × ${dtype} (${n * DTYPE_BYTES[dtype]} bytes): ${e.message}; free memory or use a smaller/quantized checkpoint`,
      { cause: e });
  }
}

function allocRaw(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case "f32": return new Float32Array(n);
    case "f64": return new Float64Array(n);
    case "f16": case "bf16": return new Uint16Array(n);
    case "i8": return new Int8Array(n);
    case "u8": case "bool": return new Uint8Array(n);
    case "i16": return new Int16Array(n);
    case "i32": return new Int32Array(n);
    case "i64": return new BigInt64Array(n);
  }
}

/** The bytes of a typed array (a view, no copy). */
export function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Fills `dst` from `fd` at `position`; readSync may return short counts and caps one call near 2 GiB. */
export function readFully(fd: number, dst: Uint8Array, position: number, file: string, what: string): void {
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < dst.length) {
    const len = Math.min(CHUNK, dst.length - done);
    const n = readSync(fd, dst, done, len, position + done);
    if (n === 0) {
      throw new XverseError("bad_checkpoint",
        `${file}: unexpected end of file while reading ${what} (got ${done} of ${dst.length} bytes); the file is truncated — download it again`);
    }
    done += n;
  }
}

interface Entry extends TensorInfo {
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

function bad(file: string, msg: string): never {
  throw new XverseError("bad_checkpoint", `${file}: ${msg}; the file is not a valid safetensors file (re-download or re-convert it)`);
}

/** Parses and validates the header; returns entries sorted by data offset. */
function parseHeader(fd: number, file: string, fileSize: number): { entries: Entry[]; metadata: Record<string, string> } {
  if (fileSize < 8) bad(file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const lenBuf = new Uint8Array(8);
  readFully(fd, lenBuf, 0, file, "the header length");
  const headerLen64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) bad(file, `header length ${headerLen64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerLen = Number(headerLen64);
  if (8 + headerLen > fileSize) bad(file, `header length ${headerLen} runs past the end of the ${fileSize}-byte file`);
  const headerBytes = new Uint8Array(headerLen);
  readFully(fd, headerBytes, 8, file, "the header");
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(headerBytes));
  } catch (e) {
    bad(file, `header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) bad(file, "header is not a JSON object");

  const dataStart = 8 + headerLen;
  const dataSize = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) bad(file, "__metadata__ is not an object");
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") bad(file, `__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof raw !== "object" || raw === null) bad(file, `entry "${name}" is not an object`);
    const { dtype: st, shape, data_offsets: offs } = raw as Record<string, unknown>;
    if (typeof st !== "string") bad(file, `tensor "${name}" has no dtype`);
    const dtype = ST_TO_DTYPE[st];
    if (!dtype) {
      throw new XverseError("unsupported",
        `${file}: tensor "${name}" has dtype ${st}, which is not supported (supported: ${Object.keys(ST_TO_DTYPE).join(" ")})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(file, `tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      bad(file, `tensor "${name}" has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [b, e] = offs as number[];
    if (b > e || e > dataSize) {
      bad(file, `tensor "${name}" data_offsets [${b}, ${e}] lie outside the ${dataSize}-byte data area`);
    }
    const want = numel(shape as number[]) * DTYPE_BYTES[dtype];
    if (e - b !== want) {
      bad(file, `tensor "${name}" spans ${e - b} bytes but ${st}${JSON.stringify(shape)} needs ${want}`);
    }
    entries.push({ name, dtype, shape: (shape as number[]).slice(), file, begin: dataStart + b, end: dataStart + e });
  }
  entries.sort((x, y) => x.begin - y.begin || x.end - y.end);
  for (let i = 1; i < entries.length; i++) {
    const p = entries[i - 1], c = entries[i];
    if (c.begin < p.end) bad(file, `tensors "${p.name}" and "${c.name}" overlap in the data area`);
  }
  return { entries, metadata };
}

/** The dtypes the kernels run as stored: these can be views into a mapped file. */
const VIEWABLE: ReadonlySet<DType> = new Set(["f32", "f16", "bf16"]);

/**
 * Opens a .safetensors file: validates the header now, reads tensor bytes on `read`. Call `close()` when done.
 * With `{ mmap: true }` (the model loader; off by default because a view is read-only memory) the file is
 * mapped when the addon can, and f32/f16/bf16 tensors read as views into it instead of copies.
 */
export function openSafetensors(path: string, opts: OpenBytesOptions = {}): TensorSource {
  assertLittleEndianHost();
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new XverseError("not_found", `cannot open safetensors file ${path}: ${(e as Error).message}`, { cause: e });
  }
  let parsed: ReturnType<typeof parseHeader>;
  try {
    parsed = parseHeader(fd, path, fstatSync(fd).size);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  const byName = new Map(parsed.entries.map((e) => [e.name, e]));
  let mapped: ByteSource | null = null;
  if (opts.mmap === true) {
    try {
      const src = openBytes(path, opts);
      if (src.mapped) mapped = src;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }
  let open = true;
  const get = (name: string): Entry => {
    const e = byName.get(name);
    if (!e) throw new XverseError("missing_tensor", `${path}: no tensor named "${name}"`);
    return e;
  };
  return {
    names: () => parsed.entries.map((e) => e.name),
    has: (name) => byName.has(name),
    info: (name) => {
      const { dtype, shape, file } = get(name);
      return { name, dtype, shape: shape.slice(), file };
    },
    read: (name) => {
      const e = get(name);
      if (!open) throw new XverseError("closed", `${path}: read("${name}") after close()`);
      if (mapped && VIEWABLE.has(e.dtype)) {
        const bytes = mapped.bytes(e.begin, e.end - e.begin, `tensor "${name}"`);
        return { dtype: e.dtype, shape: e.shape.slice(), data: alignedView(bytes, e.dtype === "f32" ? "f32" : "u16") };
      }
      // A fresh typed array is aligned for its element size, so the bytes land in place: no second copy.
      const data = allocTensorData(e.dtype, numel(e.shape), `${path}: tensor "${name}"`);
      readFully(fd, bytesOf(data), e.begin, path, `tensor "${name}"`);
      return { dtype: e.dtype, shape: e.shape.slice(), data };
    },
    metadata: () => ({ ...parsed.metadata }),
    close: () => {
      if (open) { open = false; closeSync(fd); }
    },
  };
}

// ---------------------------------------------------------------- writer

/** A tensor to write, already in memory. */
export interface NamedTensor { name: string; tensor: Tensor }
/** A tensor to write that is produced only when its turn comes (so a converter holds one tensor at a time). */
export interface LazyNamedTensor { name: string; dtype: DType; shape: number[]; load(): Tensor }
export type TensorToWrite = NamedTensor | LazyNamedTensor;

interface Planned { name: string; dtype: DType; shape: number[]; bytes: number; get(): Tensor }

function plan(t: TensorToWrite): Planned {
  if (!t.name || t.name === "__metadata__") throw new XverseError("bad_argument", `writeSafetensors: invalid tensor name "${t.name}"`);
  if ("tensor" in t) {
    const { dtype, shape } = t.tensor;
    return { name: t.name, dtype, shape, bytes: numel(shape) * DTYPE_BYTES[dtype], get: () => t.tensor };
  }
  return { name: t.name, dtype: t.dtype, shape: t.shape, bytes: numel(t.shape) * DTYPE_BYTES[t.dtype], get: t.load };
}

function checkTensor(p: Planned, t: Tensor): Uint8Array {
  const same = t.dtype === p.dtype && t.shape.length === p.shape.length && t.shape.every((d, i) => d === p.shape[i]);
  if (!same) {
    throw new XverseError("bad_argument",
      `writeSafetensors: tensor "${p.name}" was declared ${p.dtype}[${p.shape}] but load() gave ${t.dtype}[${t.shape}]`);
  }
  const bytes = bytesOf(t.data);
  if (bytes.length !== p.bytes) {
    throw new XverseError("bad_argument",
      `writeSafetensors: tensor "${p.name}" ${p.dtype}[${p.shape}] needs ${p.bytes} bytes but its data has ${bytes.length}`);
  }
  return bytes;
}

/** The header bytes (length prefix included), padded with spaces so the data area starts 8-byte aligned. */
function encodeHeader(planned: Planned[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new XverseError("bad_argument", `writeSafetensors: metadata "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let off = 0;
  const seen = new Set<string>();
  for (const p of planned) {
    if (seen.has(p.name)) throw new XverseError("bad_argument", `writeSafetensors: tensor name "${p.name}" appears twice`);
    seen.add(p.name);
    header[p.name] = { dtype: DTYPE_TO_ST[p.dtype], shape: p.shape, data_offsets: [off, off + p.bytes] };
    off += p.bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Writes tensors to `path` atomically (temp file in the same directory, fsync, rename; the temp file is removed on
 * any error). Pass an array to write in one pass — `LazyNamedTensor.load()` is called one tensor at a time, in
 * order, so a converter never holds the whole model. Any other iterable (e.g. a generator) is consumed one tensor at
 * a time into a spool file next to the destination, then copied behind the header (two passes over the disk, still
 * one tensor in memory).
 */
export function writeSafetensors(path: string, tensors: Iterable<TensorToWrite>, metadata?: Record<string, string>): void {
  assertLittleEndianHost();
  if (Array.isArray(tensors)) {
    const planned = tensors.map(plan);
    const out = new AtomicFile(path);
    try {
      out.write(encodeHeader(planned, metadata));
      for (const p of planned) out.write(checkTensor(p, p.get()));
      out.commit();
    } catch (e) {
      out.abort();
      throw e;
    }
    return;
  }
  // Unknown count and shapes: spool the data, then write header + data.
  const spool = new AtomicFile(path, ".spool");
  let out: AtomicFile;
  try {
    out = new AtomicFile(path);
  } catch (e) {
    spool.abort();
    throw e;
  }
  try {
    const planned: Planned[] = [];
    for (const t of tensors) {
      const p = plan(t);
      spool.write(checkTensor(p, p.get()));
      // Keep only the description, not the tensor.
      planned.push({ ...p, get: () => { throw new Error("unreachable"); } });
    }
    out.write(encodeHeader(planned, metadata));
    spool.copyTo(out);
    out.commit();
  } catch (e) {
    out.abort();
    throw e;
  } finally {
    spool.abort();
  }
}
