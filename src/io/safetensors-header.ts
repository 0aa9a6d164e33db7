/**
 * The safetensors header, parsed from bytes (no file access, so browsers use it too): an 8-byte little-endian
 * header length N, N bytes of JSON ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?}), then
 * the data area. Offsets in the JSON are relative to the data area; entries here carry absolute ones.
 * io/safetensors.ts reads files with it in Node, browser/load.ts reads Blobs and HTTP ranges.
 */
import { XverseError } from "../errors.js";
import { DTYPE_BYTES, numel, type DType, type TensorData } from "../tensor.js";
import type { TensorInfo } from "./source.js";

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

export interface SafetensorsEntry extends TensorInfo {
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader { entries: SafetensorsEntry[]; metadata: Record<string, string> }

function bad(file: string, msg: string): never {
  throw new XverseError("bad_checkpoint", `${file}: ${msg}; the file is not a valid safetensors file (re-download or re-convert it)`);
}

/** The 8-byte little-endian header length at the file's start, checked against the limit and the file size. */
export function safetensorsHeaderLength(first8: Uint8Array, file: string, fileSize: number): number {
  if (fileSize < 8 || first8.length < 8) bad(file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const headerLen64 = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (headerLen64 > BigInt(MAX_HEADER_BYTES)) bad(file, `header length ${headerLen64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const headerLen = Number(headerLen64);
  if (8 + headerLen > fileSize) bad(file, `header length ${headerLen} runs past the end of the ${fileSize}-byte file`);
  return headerLen;
}

/**
 * Parses and validates the JSON header (the `headerLen` bytes after the length); returns entries sorted by data
 * offset, with absolute byte ranges in a file of `fileSize` bytes.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, file: string, fileSize: number): SafetensorsHeader {
  const headerLen = headerBytes.length;
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
  const entries: SafetensorsEntry[] = [];
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

