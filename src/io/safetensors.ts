/**
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON
 * ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}), then the data area.
 * Offsets are relative to the data area. The reader validates the whole header up front and reads each tensor's
 * bytes only when asked; the writer writes to a temp name and renames, so a failure never leaves a partial file.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { XverseError } from "../errors.js";
import { DTYPE_BYTES, numel, type DType, type Tensor } from "../tensor.js";
import { allocTensorData, bytesOf, DTYPE_TO_ST, parseSafetensorsHeader, safetensorsHeaderLength, type SafetensorsEntry, type SafetensorsHeader } from "./safetensors-header.js";
import type { TensorInfo, TensorSource } from "./source.js";
import { AtomicFile } from "./atomic.js";
import { alignedView, openBytes, type ByteSource, type OpenBytesOptions } from "./mapped-file.js";

export { ST_TO_DTYPE, DTYPE_TO_ST, allocTensorData, bytesOf } from "./safetensors-header.js";

export function assertLittleEndianHost(): void {
  if (endianness() !== "LE") {
    throw new XverseError("unsupported", "checkpoint files are little-endian and this machine is big-endian; this is not supported");
  }
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

type Entry = SafetensorsEntry;

/** Reads and validates the header of an open file; returns entries sorted by data offset. */
function parseHeader(fd: number, file: string, fileSize: number): SafetensorsHeader {
  const lenBuf = new Uint8Array(8);
  if (fileSize >= 8) readFully(fd, lenBuf, 0, file, "the header length");
  const headerLen = safetensorsHeaderLength(lenBuf, file, fileSize);
  const headerBytes = new Uint8Array(headerLen);
  readFully(fd, headerBytes, 8, file, "the header");
  return parseSafetensorsHeader(headerBytes, file, fileSize);
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
