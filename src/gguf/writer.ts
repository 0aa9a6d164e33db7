/**
 * GGUF v3 writer (little-endian). The header (metadata + tensor infos) is written first with every tensor's
 * offset computed from its type and shape; then tensors are produced and written one at a time, each padded
 * to the alignment, so a 13B conversion never holds more than one tensor in memory.
 * Written to a temporary name in the same directory and renamed at the end: no half-written file is left.
 */
import { AtomicFile } from "../io/atomic.js";
import { XverseError } from "../errors.js";
import { GGML_TYPES, GGUF_VALUE, GGUF_VALUE_NAMES } from "./types.js";

export interface GgufWriteTensor {
  name: string;
  /** ggml type id (GGML.F32, GGML.Q8_0, …). */
  type: number;
  /** Row-major shape, e.g. [rows, cols]; written to the file reversed (ggml order). */
  shape: number[];
  /** Produces the tensor's raw bytes in its ggml type; called once, in order, while writing. */
  data: () => Uint8Array;
}

export interface GgufWriteOptions {
  /** Key → value. Types are taken from `types` when given there, else inferred (see inferType). */
  metadata: Record<string, unknown>;
  /** Key → GGUF type name as in GgufFile.metadataTypes: "UINT32", "FLOAT32", "ARRAY[STRING]", … */
  types?: Record<string, string>;
  tensors: GgufWriteTensor[];
  alignment?: number;
  /** Called after each tensor is written. */
  onProgress?: (done: number, total: number, name: string) => void;
}

/** Guesses a GGUF type for a JS value: integers → UINT32/INT32 (64-bit beyond), other numbers → FLOAT32. */
export function inferType(v: unknown, key: string): string {
  if (typeof v === "string") return "STRING";
  if (typeof v === "boolean") return "BOOL";
  if (typeof v === "bigint") return v < 0n ? "INT64" : "UINT64";
  if (typeof v === "number") {
    if (!Number.isInteger(v)) return "FLOAT32";
    if (v >= 0 && v < 2 ** 32) return "UINT32";
    if (v >= -(2 ** 31) && v < 2 ** 31) return "INT32";
    return v < 0 ? "INT64" : "UINT64";
  }
  if (Array.isArray(v)) {
    if (v.length === 0) return "ARRAY[INT32]";
    if (typeof v[0] === "string") return "ARRAY[STRING]";
    if (v.every((x) => typeof x === "number" && Number.isInteger(x))) {
      return v.every((x) => (x as number) >= -(2 ** 31) && (x as number) < 2 ** 31) ? "ARRAY[INT32]" : "ARRAY[INT64]";
    }
    if (v.every((x) => typeof x === "number")) return "ARRAY[FLOAT32]";
    return `ARRAY[${inferType(v[0], key)}]`;
  }
  throw new XverseError("bad_gguf", `metadata "${key}": cannot store a ${typeof v} in GGUF`);
}

/** Growable little-endian byte builder for the header. */
class Bytes {
  buf = Buffer.alloc(1 << 16);
  len = 0;
  private room(n: number): number {
    if (this.len + n > this.buf.length) {
      const nb = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(nb, 0, 0, this.len);
      this.buf = nb;
    }
    const o = this.len;
    this.len += n;
    return o;
  }
  // room() runs before this.buf is read: it may replace the buffer, and `this.buf.writeX(v, this.room(n))`
  // would write into the old one (the header of a 100K-token vocabulary outgrows the first 64 KiB).
  u8(v: number): void { const o = this.room(1); this.buf.writeUInt8(v, o); }
  u32(v: number): void { const o = this.room(4); this.buf.writeUInt32LE(v, o); }
  u64(v: number | bigint): void { const o = this.room(8); this.buf.writeBigUInt64LE(BigInt(v), o); }
  string(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    const o = this.room(b.length); // room() first: it may replace this.buf
    b.copy(this.buf, o);
  }
  scalar(type: number, v: unknown, key: string): void {
    const num = (): number => {
      if (typeof v !== "number" && typeof v !== "bigint") throw new XverseError("bad_gguf", `metadata "${key}": expected a number, got ${typeof v}`);
      return Number(v);
    };
    switch (type) {
      case GGUF_VALUE.UINT8: { const o = this.room(1); this.buf.writeUInt8(num(), o); return; }
      case GGUF_VALUE.INT8: { const o = this.room(1); this.buf.writeInt8(num(), o); return; }
      case GGUF_VALUE.UINT16: { const o = this.room(2); this.buf.writeUInt16LE(num(), o); return; }
      case GGUF_VALUE.INT16: { const o = this.room(2); this.buf.writeInt16LE(num(), o); return; }
      case GGUF_VALUE.UINT32: { const o = this.room(4); this.buf.writeUInt32LE(num(), o); return; }
      case GGUF_VALUE.INT32: { const o = this.room(4); this.buf.writeInt32LE(num(), o); return; }
      case GGUF_VALUE.FLOAT32: { const o = this.room(4); this.buf.writeFloatLE(num(), o); return; }
      case GGUF_VALUE.FLOAT64: { const o = this.room(8); this.buf.writeDoubleLE(num(), o); return; }
      case GGUF_VALUE.UINT64: { const o = this.room(8); this.buf.writeBigUInt64LE(BigInt(v as number), o); return; }
      case GGUF_VALUE.INT64: { const o = this.room(8); this.buf.writeBigInt64LE(BigInt(v as number), o); return; }
      case GGUF_VALUE.BOOL: this.u8(v ? 1 : 0); return;
      case GGUF_VALUE.STRING:
        if (typeof v !== "string") throw new XverseError("bad_gguf", `metadata "${key}": expected a string, got ${typeof v}`);
        this.string(v);
        return;
    }
    throw new XverseError("bad_gguf", `metadata "${key}": unknown GGUF value type ${type}`);
  }
  /** A value of a type name like "ARRAY[ARRAY[STRING]]". */
  value(typeName: string, v: unknown, key: string): void {
    const m = /^ARRAY\[(.*)\]$/.exec(typeName);
    if (!m) {
      const t = GGUF_VALUE_NAMES.indexOf(typeName);
      if (t < 0 || t === GGUF_VALUE.ARRAY) throw new XverseError("bad_gguf", `metadata "${key}": unknown GGUF type ${typeName}`);
      this.scalar(t, v, key);
      return;
    }
    if (!Array.isArray(v)) throw new XverseError("bad_gguf", `metadata "${key}": type ${typeName} needs an array`);
    const inner = m[1];
    this.u32(inner.startsWith("ARRAY") ? GGUF_VALUE.ARRAY : GGUF_VALUE_NAMES.indexOf(inner));
    this.u64(v.length);
    for (const x of v) this.value(inner, x, key);
  }
}

function pad(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export function writeGguf(path: string, opts: GgufWriteOptions): void {
  const alignment = opts.alignment ?? 32;
  if (alignment <= 0 || (alignment & (alignment - 1)) !== 0) throw new XverseError("bad_gguf", `alignment must be a power of two, got ${alignment}`);
  const meta = { ...opts.metadata };
  if (alignment !== 32) meta["general.alignment"] = alignment;
  const types = { ...(opts.types ?? {}) };
  if (alignment !== 32) types["general.alignment"] = "UINT32";

  const hdr = new Bytes();
  hdr.u32(0x46554747); // "GGUF"
  hdr.u32(3);
  hdr.u64(opts.tensors.length);
  hdr.u64(Object.keys(meta).length);
  for (const [k, v] of Object.entries(meta)) {
    const tn = types[k] ?? inferType(v, k);
    hdr.string(k);
    hdr.u32(tn.startsWith("ARRAY") ? GGUF_VALUE.ARRAY : GGUF_VALUE_NAMES.indexOf(tn));
    hdr.value(tn, v, k);
  }
  const sizes: number[] = [];
  let offset = 0;
  for (const t of opts.tensors) {
    const gt = GGML_TYPES.get(t.type);
    if (!gt) throw new XverseError("bad_gguf", `tensor "${t.name}": unknown ggml type ${t.type}`);
    const dims = [...t.shape].reverse();
    const nel = dims.reduce((a, b) => a * b, 1);
    if (dims[0] % gt.blockSize !== 0) throw new XverseError("bad_gguf", `tensor "${t.name}": row length ${dims[0]} is not a multiple of the ${gt.name} block size ${gt.blockSize}`);
    hdr.string(t.name);
    hdr.u32(dims.length);
    for (const d of dims) hdr.u64(d);
    hdr.u32(t.type);
    hdr.u64(offset);
    const nbytes = (nel / gt.blockSize) * gt.typeSize;
    sizes.push(nbytes);
    offset = pad(offset + nbytes, alignment);
  }

  const out = new AtomicFile(path);
  try {
    const zeros = new Uint8Array(alignment);
    out.write(hdr.buf.subarray(0, hdr.len));
    out.write(zeros.subarray(0, pad(out.bytesWritten, alignment) - out.bytesWritten));
    const dataStart = out.bytesWritten;
    opts.tensors.forEach((t, i) => {
      const bytes = t.data();
      if (bytes.length !== sizes[i]) throw new Error(`writeGguf: tensor "${t.name}" produced ${bytes.length} bytes, expected ${sizes[i]}`);
      out.write(bytes);
      const rel = out.bytesWritten - dataStart;
      out.write(zeros.subarray(0, pad(rel, alignment) - rel));
      opts.onProgress?.(i + 1, opts.tensors.length, t.name);
    });
    out.commit();
  } catch (e) {
    out.abort();
    if (e instanceof XverseError || !(e as NodeJS.ErrnoException).code) throw e;
    throw new XverseError("write_failed", `writing ${path} failed: ${(e as Error).message} (the destination was not touched)`, { cause: e });
  }
}
