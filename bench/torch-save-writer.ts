/**
 * A minimal streaming writer of `torch.save` checkpoints (zip format), for benchmarks that need a large .bin
 * checkpoint without PyTorch. Layout as torch.save writes it: a STORED zip whose entries are `<archive>/data.pkl`
 * (a protocol-2 pickle of an OrderedDict name → `torch._utils._rebuild_tensor_v2(persistent_id(('storage',
 * torch.<T>Storage, key, 'cpu', numel)), 0, size, stride, False, OrderedDict())`), then one `<archive>/data/<key>`
 * entry per storage (data aligned to 64 bytes with an "FB" padding extra field, like torch), then
 * `<archive>/version` and `<archive>/byteorder`. Zip64 records are written where a size or offset needs them.
 *
 * The pickle is written first (so the whole tensor list, names/shapes/dtypes, is known up front); each tensor's
 * bytes are then produced, written and dropped one at a time, so memory holds one tensor at most.
 */
import { closeSync, openSync, writeSync } from "node:fs";
import { crc32 } from "node:zlib";

export type TorchDType = "bf16" | "f16" | "f32";

const STORAGE: Record<TorchDType, { name: string; width: number }> = {
  bf16: { name: "BFloat16Storage", width: 2 },
  f16: { name: "HalfStorage", width: 2 },
  f32: { name: "FloatStorage", width: 4 },
};

export interface TorchTensorPlan {
  name: string;
  dtype: TorchDType;
  shape: number[];
}

// ---------- pickle (protocol 2) ----------

class PickleOut {
  private parts: number[] = [];
  op(...b: number[]): void { for (const x of b) this.parts.push(x); }
  private le(v: number, n: number): void { for (let i = 0; i < n; i++) this.parts.push(Math.floor(v / 2 ** (8 * i)) & 0xff); }
  int(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new Error(`pickle int ${v}: only non-negative safe integers`);
    if (v < 0x100) { this.op(0x4b, v); return; } // BININT1
    if (v < 0x10000) { this.op(0x4d); this.le(v, 2); return; } // BININT2
    if (v < 0x80000000) { this.op(0x4a); this.le(v, 4); return; } // BININT (signed 32)
    this.op(0x8a, 8); this.le(v, 8); // LONG1, 8 bytes little-endian two's complement (positive, < 2^53)
  }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.op(0x58); this.le(b.length, 4); // BINUNICODE
    for (const x of b) this.parts.push(x);
  }
  global(module: string, name: string): void {
    this.op(0x63); // GLOBAL "module\nname\n"
    for (const x of Buffer.from(`${module}\n${name}\n`, "latin1")) this.parts.push(x);
  }
  tuple(items: number[]): void {
    if (items.length === 0) { this.op(0x29); return; } // EMPTY_TUPLE
    this.op(0x28); for (const v of items) this.int(v); this.op(0x74); // MARK … TUPLE
  }
  bytes(): Uint8Array { return Uint8Array.from(this.parts); }
}

/** The data.pkl of a state dict whose i-th tensor lives in storage key String(i). */
export function statePickle(tensors: TorchTensorPlan[]): Uint8Array {
  const p = new PickleOut();
  p.op(0x80, 2); // PROTO 2
  p.global("collections", "OrderedDict"); p.op(0x29, 0x52); // OrderedDict()
  p.op(0x28); // MARK for SETITEMS
  tensors.forEach((t, i) => {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const stride = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    p.str(t.name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op(0x28); // MARK: args tuple
    p.op(0x28); p.str("storage"); p.global("torch", STORAGE[t.dtype].name); p.str(String(i)); p.str("cpu"); p.int(n); p.op(0x74);
    p.op(0x51); // BINPERSID
    p.int(0); // storage offset
    p.tuple(t.shape);
    p.tuple(stride);
    p.op(0x89); // False (requires_grad)
    p.global("collections", "OrderedDict"); p.op(0x29, 0x52); // backward hooks: OrderedDict()
    p.op(0x74, 0x52); // TUPLE, REDUCE
  });
  p.op(0x75, 0x2e); // SETITEMS, STOP
  return p.bytes();
}

// ---------- zip (stored) ----------

interface CentralEntry { name: Buffer; crc: number; size: number; offset: number }

const U32_MAX = 0xffffffff;

export class TorchSaveWriter {
  private readonly fd: number;
  private pos = 0;
  private readonly central: CentralEntry[] = [];
  private next = 0;
  private readonly pickled: Uint8Array;

  /** `archive` is the zip's top folder (torch uses the file name without .bin). */
  constructor(readonly path: string, readonly archive: string, readonly tensors: TorchTensorPlan[]) {
    this.fd = openSync(path, "w");
    this.pickled = statePickle(tensors);
    this.entry("data.pkl", this.pickled);
  }

  /** Writes the next tensor's raw little-endian bytes (must come in plan order). */
  writeTensor(data: ArrayBufferView): void {
    const t = this.tensors[this.next];
    if (!t) throw new Error(`${this.path}: more tensors written than planned`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (data.byteLength !== n * STORAGE[t.dtype].width) {
      throw new Error(`${this.path}: tensor ${t.name} has ${data.byteLength} bytes, expected ${n * STORAGE[t.dtype].width}`);
    }
    this.entry(`data/${this.next}`, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    this.next++;
  }

  /** Writes version, byteorder, the central directory and the end records; closes the file. */
  finish(): void {
    if (this.next !== this.tensors.length) throw new Error(`${this.path}: ${this.tensors.length - this.next} planned tensors never written`);
    this.entry("version", Buffer.from("3\n"));
    this.entry("byteorder", Buffer.from("little"));
    const cdStart = this.pos;
    for (const e of this.central) this.writeCentral(e);
    const cdSize = this.pos - cdStart;
    const count = this.central.length;
    const need64 = cdStart >= U32_MAX || cdSize >= U32_MAX || count >= 0xffff;
    if (need64) {
      const recPos = this.pos;
      const rec = Buffer.alloc(56);
      rec.writeUInt32LE(0x06064b50, 0);
      rec.writeBigUInt64LE(44n, 4); // size of the rest of the record
      rec.writeUInt16LE(45, 12); rec.writeUInt16LE(45, 14);
      rec.writeUInt32LE(0, 16); rec.writeUInt32LE(0, 20);
      rec.writeBigUInt64LE(BigInt(count), 24); rec.writeBigUInt64LE(BigInt(count), 32);
      rec.writeBigUInt64LE(BigInt(cdSize), 40); rec.writeBigUInt64LE(BigInt(cdStart), 48);
      this.raw(rec);
      const loc = Buffer.alloc(20);
      loc.writeUInt32LE(0x07064b50, 0); loc.writeUInt32LE(0, 4);
      loc.writeBigUInt64LE(BigInt(recPos), 8); loc.writeUInt32LE(1, 16);
      this.raw(loc);
    }
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(need64 ? 0xffff : count, 8); eocd.writeUInt16LE(need64 ? 0xffff : count, 10);
    eocd.writeUInt32LE(need64 ? U32_MAX : cdSize, 12); eocd.writeUInt32LE(need64 ? U32_MAX : cdStart, 16);
    this.raw(eocd);
    closeSync(this.fd);
  }

  /** Abandons the file (closes the descriptor). */
  abort(): void { try { closeSync(this.fd); } catch { /* already closed */ } }

  private raw(b: Uint8Array): void {
    const CHUNK = 1 << 28;
    for (let o = 0; o < b.length;) {
      const w = writeSync(this.fd, b, o, Math.min(CHUNK, b.length - o), this.pos);
      o += w; this.pos += w;
    }
  }

  private entry(rel: string, data: Uint8Array): void {
    const name = Buffer.from(`${this.archive}/${rel}`, "utf8");
    const offset = this.pos;
    const big = data.length >= U32_MAX;
    const z64 = big ? 20 : 0; // local zip64 extra: id, len, size, compressed size
    // Pad with an "FB" extra field so the data starts on a 64-byte boundary, as torch.save does.
    const base = offset + 30 + name.length + z64;
    const pad = (64 - ((base + 4) % 64)) % 64;
    const extraLen = z64 + 4 + pad;
    const h = Buffer.alloc(30 + name.length + extraLen);
    const crc = crc32(data) >>> 0;
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(big ? 45 : 20, 4); // version needed
    h.writeUInt16LE(0x0800, 6); // UTF-8 names
    h.writeUInt16LE(0, 8); // stored
    h.writeUInt16LE(0, 10); h.writeUInt16LE(0x21, 12); // 1980-01-01 00:00
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(big ? U32_MAX : data.length, 18); h.writeUInt32LE(big ? U32_MAX : data.length, 22);
    h.writeUInt16LE(name.length, 26); h.writeUInt16LE(extraLen, 28);
    name.copy(h, 30);
    let x = 30 + name.length;
    if (big) {
      h.writeUInt16LE(0x0001, x); h.writeUInt16LE(16, x + 2);
      h.writeBigUInt64LE(BigInt(data.length), x + 4); h.writeBigUInt64LE(BigInt(data.length), x + 12);
      x += 20;
    }
    h.writeUInt16LE(0x4246, x); h.writeUInt16LE(pad, x + 2); // "FB"
    h.fill(0x5a, x + 4, x + 4 + pad); // 'Z' padding, like torch
    this.raw(h);
    if ((this.pos % 64) !== 0) throw new Error("internal: misaligned zip entry data");
    this.raw(data);
    this.central.push({ name, crc, size: data.length, offset });
  }

  private writeCentral(e: CentralEntry): void {
    const bigSize = e.size >= U32_MAX, bigOff = e.offset >= U32_MAX;
    const fields: bigint[] = [];
    if (bigSize) fields.push(BigInt(e.size), BigInt(e.size));
    if (bigOff) fields.push(BigInt(e.offset));
    const extraLen = fields.length ? 4 + 8 * fields.length : 0;
    const h = Buffer.alloc(46 + e.name.length + extraLen);
    h.writeUInt32LE(0x02014b50, 0);
    h.writeUInt16LE(fields.length ? 45 : 20, 4); h.writeUInt16LE(fields.length ? 45 : 20, 6);
    h.writeUInt16LE(0x0800, 8); h.writeUInt16LE(0, 10);
    h.writeUInt16LE(0, 12); h.writeUInt16LE(0x21, 14);
    h.writeUInt32LE(e.crc, 16);
    h.writeUInt32LE(bigSize ? U32_MAX : e.size, 20); h.writeUInt32LE(bigSize ? U32_MAX : e.size, 24);
    h.writeUInt16LE(e.name.length, 28); h.writeUInt16LE(extraLen, 30); h.writeUInt16LE(0, 32);
    h.writeUInt16LE(0, 34); h.writeUInt16LE(0, 36); h.writeUInt32LE(0, 38);
    h.writeUInt32LE(bigOff ? U32_MAX : e.offset, 42);
    e.name.copy(h, 46);
    if (extraLen) {
      let x = 46 + e.name.length;
      h.writeUInt16LE(0x0001, x); h.writeUInt16LE(8 * fields.length, x + 2); x += 4;
      for (const f of fields) { h.writeBigUInt64LE(f, x); x += 8; }
    }
    this.raw(h);
  }
}
