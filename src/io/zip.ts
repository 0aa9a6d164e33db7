/**
 * A minimal zip reader for the container `torch.save` writes (PyTorch ≥ 1.6): every entry is STORED
 * (uncompressed), so an entry is just a byte range of the file. Reads the end-of-central-directory record
 * (zip64 when counts or offsets overflow 32 bits), the central directory, and each entry's local header to find
 * where its data starts. Compressed or encrypted entries are refused, never inflated.
 */
import { closeSync, fstatSync, openSync } from "node:fs";
import { XverseError } from "../errors.js";
import { readFully } from "./safetensors.js";

export interface ZipEntry {
  name: string;
  /** Absolute offset of the entry's data in the file. */
  dataOffset: number;
  size: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;

export class ZipReader {
  readonly path: string;
  readonly fd: number;
  readonly fileSize: number;
  private readonly entries = new Map<string, ZipEntry>();

  private constructor(path: string, fd: number, fileSize: number) {
    this.path = path;
    this.fd = fd;
    this.fileSize = fileSize;
  }

  static open(path: string): ZipReader {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new XverseError("not_found", `cannot open ${path}: ${(e as Error).message}`, { cause: e });
    }
    const z = new ZipReader(path, fd, fstatSync(fd).size);
    try {
      z.readDirectory();
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    return z;
  }

  names(): string[] { return [...this.entries.keys()]; }
  get(name: string): ZipEntry | undefined { return this.entries.get(name); }

  /** Reads `length` bytes at `offset` within an entry into `dst` (or a fresh buffer). */
  read(entry: ZipEntry, offset = 0, length = entry.size - offset, dst?: Uint8Array): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > entry.size) {
      this.bad(`read of bytes [${offset}, ${offset + length}) is outside entry ${entry.name} (${entry.size} bytes)`);
    }
    const out = dst ?? new Uint8Array(length);
    readFully(this.fd, out.subarray(0, length), entry.dataOffset + offset, this.path, `zip entry ${entry.name}`);
    return out;
  }

  close(): void { closeSync(this.fd); }

  private bad(msg: string): never {
    throw new XverseError("bad_checkpoint",
      `${this.path}: ${msg}; this is not a valid torch.save zip file (truncated download or wrong file?)`);
  }

  private bytes(pos: number, len: number, what: string): DataView {
    if (pos < 0 || pos + len > this.fileSize) this.bad(`${what} at byte ${pos} runs past the end of the ${this.fileSize}-byte file`);
    const b = new Uint8Array(len);
    readFully(this.fd, b, pos, this.path, what);
    return new DataView(b.buffer);
  }

  private readDirectory(): void {
    if (this.fileSize < EOCD_SIZE) this.bad("file is too short to hold a zip directory");
    // The EOCD record sits at the very end, followed only by an optional comment of up to 64 KiB.
    const tailLen = Math.min(this.fileSize, EOCD_SIZE + MAX_COMMENT);
    const tailStart = this.fileSize - tailLen;
    const tail = this.bytes(tailStart, tailLen, "the end of the file");
    let eocd = -1;
    for (let i = tailLen - EOCD_SIZE; i >= 0; i--) {
      if (tail.getUint32(i, true) === SIG_EOCD && i + EOCD_SIZE + tail.getUint16(i + 20, true) === tailLen) { eocd = i; break; }
    }
    if (eocd < 0) this.bad("no end-of-central-directory record");
    let count = tail.getUint16(eocd + 10, true);
    let cdSize = tail.getUint32(eocd + 12, true);
    let cdOffset = tail.getUint32(eocd + 16, true);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      // zip64: a 20-byte locator just before the EOCD points at the 56-byte zip64 EOCD record.
      const locPos = tailStart + eocd - 20;
      const loc = this.bytes(locPos, 20, "the zip64 locator");
      if (loc.getUint32(0, true) !== SIG_ZIP64_LOCATOR) this.bad("zip64 locator missing");
      const recPos = safeNumber(loc.getBigUint64(8, true), () => this.bad("zip64 record offset too large"));
      const rec = this.bytes(recPos, 56, "the zip64 end-of-central-directory record");
      if (rec.getUint32(0, true) !== SIG_ZIP64_EOCD) this.bad("zip64 end-of-central-directory record missing");
      count = safeNumber(rec.getBigUint64(32, true), () => this.bad("zip64 entry count too large"));
      cdSize = safeNumber(rec.getBigUint64(40, true), () => this.bad("zip64 directory size too large"));
      cdOffset = safeNumber(rec.getBigUint64(48, true), () => this.bad("zip64 directory offset too large"));
    }
    if (cdOffset + cdSize > this.fileSize) this.bad(`central directory [${cdOffset}, ${cdOffset + cdSize}) lies outside the file`);
    const cd = this.bytes(cdOffset, cdSize, "the central directory");
    const dec = new TextDecoder("utf-8");
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cdSize || cd.getUint32(p, true) !== SIG_CENTRAL) this.bad(`central directory entry ${i} is corrupt`);
      const flags = cd.getUint16(p + 8, true);
      const method = cd.getUint16(p + 10, true);
      let size = cd.getUint32(p + 24, true);
      let compSize = cd.getUint32(p + 20, true);
      const nameLen = cd.getUint16(p + 28, true);
      const extraLen = cd.getUint16(p + 30, true);
      const commentLen = cd.getUint16(p + 32, true);
      let localOffset = cd.getUint32(p + 42, true);
      if (p + 46 + nameLen + extraLen + commentLen > cdSize) this.bad(`central directory entry ${i} runs past the directory`);
      const name = dec.decode(new Uint8Array(cd.buffer, p + 46, nameLen));
      if (flags & 1) {
        throw new XverseError("unsupported", `${this.path}: zip entry ${name} is encrypted; encrypted checkpoints are not supported`);
      }
      if (method !== 0) {
        throw new XverseError("unsupported",
          `${this.path}: zip entry ${name} is compressed (method ${method}); only stored (uncompressed) entries, as torch.save writes them, are supported — re-save the checkpoint with torch.save`);
      }
      // zip64 extended information: 8-byte values for exactly those fields that were 0xffffffff, in this order.
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = cd.getUint16(x, true), len = cd.getUint16(x + 2, true);
        if (id === 0x0001) {
          let q = x + 4;
          const next = (): number => {
            // the field's own length may claim more than the extra area holds (fuzz finding): bound by both
            if (q + 8 > Math.min(x + 4 + len, xEnd)) this.bad(`zip64 field of entry ${name} is too short`);
            const v = safeNumber(cd.getBigUint64(q, true), () => this.bad(`zip64 value of entry ${name} too large`));
            q += 8;
            return v;
          };
          if (size === 0xffffffff) size = next();
          if (compSize === 0xffffffff) compSize = next();
          if (localOffset === 0xffffffff) localOffset = next();
        }
        x += 4 + len;
      }
      if (compSize !== size) this.bad(`entry ${name} is stored but its sizes differ (${compSize} vs ${size})`);
      const local = this.bytes(localOffset, 30, `the local header of ${name}`);
      if (local.getUint32(0, true) !== SIG_LOCAL) this.bad(`local header of entry ${name} is missing`);
      const dataOffset = localOffset + 30 + local.getUint16(26, true) + local.getUint16(28, true);
      if (dataOffset + size > this.fileSize) {
        this.bad(`entry ${name} (${size} bytes at ${dataOffset}) runs past the end of the ${this.fileSize}-byte file`);
      }
      this.entries.set(name, { name, dataOffset, size });
      p += 46 + nameLen + extraLen + commentLen;
    }
  }
}

function safeNumber(v: bigint, onOverflow: () => never): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) onOverflow();
  return Number(v);
}
