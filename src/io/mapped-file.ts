/**
 * The bytes of a checkpoint file, mapped instead of read: with the native addon the whole file is one read-only
 * private mapping (native/src/mmap.cc) and a tensor is a typed-array view into it — no copy, and the pages are
 * the page cache's, shared with other processes and with the next run. Without the addon (not built, or an old
 * build), the same interface reads the requested bytes into a fresh buffer, as before.
 *
 * Byte-split files (`model.gguf.aa`, `.ab`, … as `split -b` writes them; XVERSE's 65B GGUF ships this way) open
 * as ONE file: each part is mapped on its own, and only a range that straddles a part boundary is copied.
 *
 * Views into a mapping are read-only memory: writing to one crashes the process (SIGSEGV), so every consumer
 * that changes weight bytes (q/k row un-permutation, LoRA merge, dequantization) writes to a copy.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { totalmem } from "node:os";
import { basename, dirname, join } from "node:path";
import { XverseError } from "../errors.js";
import { loadAddon, type Addon } from "../backend/native/addon.js";
import { maxOf } from "../arrays.js";

export interface ByteSource {
  /** The path as given (the first part, or the stem, of a byte-split file): used in messages. */
  readonly path: string;
  /** The files behind it, in order (one, or the byte-split parts). */
  readonly parts: readonly string[];
  /** Total bytes (all parts). */
  readonly size: number;
  /** Whether `bytes` returns views into a mapping (else fresh copies). */
  readonly mapped: boolean;
  /** Copies up to `len` bytes at file position `pos` into dst[off…]; returns the count (short only at the end). */
  readAt(dst: Uint8Array, off: number, len: number, pos: number): number;
  /**
   * Bytes [pos, pos + len): a view into the mapping when they lie in one mapped part, else a fresh copy (its own
   * ArrayBuffer, so aligned for any element type); a Buffer either way. Never write to the result.
   */
  bytes(pos: number, len: number, what: string): Uint8Array;
  /** Reads [pos, pos + len) from disk into the mapping now (no-op when not mapped). */
  populate(pos: number, len: number): void;
  /**
   * Drops the mapped pages wholly inside [pos, pos + len) from this process (no-op when not mapped): for bytes
   * that were copied and will not be read through the mapping again, so they do not count twice in RSS.
   */
  release(pos: number, len: number): void;
}

export interface OpenBytesOptions {
  /** Map the file when the native addon can (default true); false always reads. */
  mmap?: boolean;
  /**
   * Read each range `bytes` hands out from disk into the mapping before returning it (default false), so the
   * cost of a cold page cache is paid while loading — with progress — not by the first token. Worth it when the
   * file fits in RAM; when it does not, pages should come and go on demand.
   */
  populate?: boolean;
  /** Called with the byte count of every range `bytes` hands out (load progress). */
  onRead?: (bytes: number) => void;
}

let addonCache: Addon | null | undefined;
/** The addon's mapFile, or null: no addon, or one built before mapFile existed. Loaded once. */
function mapper(): Addon | null {
  if (addonCache === undefined) {
    const r = loadAddon();
    // (Windows builds have no mmap binding behind mapFile: they read)
    addonCache = r.addon && typeof r.addon.mapFile === "function" && process.platform !== "win32" ? r.addon : null;
  }
  return addonCache;
}

/** Whether files can be mapped here (the addon is built with mapFile and the platform has mmap). */
export function canMap(): boolean {
  return mapper() !== null;
}

/**
 * Whether a model of `bytes` should be read into its mapping while loading (OpenBytesOptions.populate): yes
 * when it fits comfortably in RAM; a larger one would only evict its own first layers, so it pages on demand.
 */
export function fitsInRam(bytes: number): boolean {
  return bytes <= 0.75 * totalmem();
}

// ---------------------------------------------------------------- byte-split parts

const SPLIT_SUFFIX = /^(.*)\.([a-z]{2,})$/;

/** "aa" → "ab", "az" → "ba"; null after "zz…z". */
function nextSuffix(s: string): string | null {
  const c = s.split("");
  for (let i = c.length - 1; i >= 0; i--) {
    if (c[i] !== "z") {
      c[i] = String.fromCharCode(c[i].charCodeAt(0) + 1);
      return c.join("");
    }
    c[i] = "a";
  }
  return null;
}

/**
 * When `path` names a byte-split file — its first part (`x.gguf.aa`), or the stem (`x.gguf`) where only the parts
 * exist — returns the stem and the suffix length; else null. Only GGUF files are recognised this way.
 */
function byteSplitStem(path: string): { stem: string; width: number } | null {
  const m = SPLIT_SUFFIX.exec(path);
  if (m && m[1].toLowerCase().endsWith(".gguf") && existsSync(path)) {
    if (/^a+$/.test(m[2])) return { stem: m[1], width: m[2].length };
    // x.gguf.bak is a file of its own; x.gguf.ab next to x.gguf.aa is a part
    if (m[2].length > 4 || !existsSync(`${m[1]}.${"a".repeat(m[2].length)}`)) return null;
    throw new XverseError("bad_model_path", `${path} is a later part of a byte-split file: give the first part, ${m[1]}.${"a".repeat(m[2].length)} (or ${m[1]} for all of them)`);
  }
  if (path.toLowerCase().endsWith(".gguf") && !existsSync(path)) {
    for (const width of [2, 3, 4]) if (existsSync(`${path}.${"a".repeat(width)}`)) return { stem: path, width };
    const dir = dirname(path), base = basename(path) + ".";
    let later: string | undefined;
    try {
      later = readdirSync(dir).find((n) => n.startsWith(base) && /^[a-z]{2,4}$/.test(n.slice(base.length)));
    } catch {
      // no such directory: the caller reports the missing path
    }
    if (later) throw new XverseError("not_found", `byte-split file ${path}: the first part ${path}.${"a".repeat(later.length - base.length)} is missing (${join(dir, later)} exists); download it`);
  }
  return null;
}

/** True for a GGUF model path: a .gguf file, the first part of a byte-split one, or the stem of its parts. */
export function isGgufPath(path: string): boolean {
  if (path.toLowerCase().endsWith(".gguf")) return true;
  const m = SPLIT_SUFFIX.exec(path);
  return m !== null && m[1].toLowerCase().endsWith(".gguf") && existsSync(path);
}

/** Whether `path` exists as a model file: the file itself, or byte-split parts of it. */
export function modelFileExists(path: string): boolean {
  return existsSync(path) || byteSplitStem(path) !== null;
}

/**
 * The parts of a byte-split file, in order, checked: no gap in the suffixes (`.ab` missing while `.ac` exists),
 * every part a regular file, and all parts but the last of one size (what `split -b` writes; a shorter one was
 * cut off mid-download). Null when `path` is not byte-split.
 */
export function byteSplitParts(path: string): string[] | null {
  const found = byteSplitStem(path);
  if (!found) return null;
  const { stem, width } = found;
  const dir = dirname(stem), base = basename(stem);
  const re = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\.([a-z]{${width}})$`);
  const present = new Set<string>();
  for (const name of readdirSync(dir === "" ? "." : dir)) {
    const m = re.exec(name);
    if (m) present.add(m[1]);
  }
  const parts: string[] = [];
  for (let s: string | null = "a".repeat(width); s !== null && present.has(s); s = nextSuffix(s)) {
    parts.push(`${stem}.${s}`);
    present.delete(s);
  }
  if (present.size > 0) {
    const later = [...present].sort()[0];
    const missing = `${stem}.${nextSuffix(parts[parts.length - 1].slice(-width))}`;
    throw new XverseError("not_found", `byte-split file ${stem}: part ${missing} is missing (found ${parts.length} part(s) before it and ${stem}.${later} after); download the missing part`);
  }
  const sizes = parts.map((p) => {
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      throw new XverseError("not_found", `byte-split file ${stem}: cannot read part ${p}: ${(e as Error).message}`);
    }
    if (!st.isFile()) throw new XverseError("bad_model_path", `byte-split file ${stem}: part ${p} is not a regular file (a directory?); each part must be a file as \`split\` wrote it`);
    return st.size;
  });
  // split -b writes equal parts and a shorter last one: any other pattern means a part was cut off
  if (parts.length > 1) {
    const full = maxOf(sizes.slice(0, -1));
    for (let i = 0; i < parts.length - 1; i++) {
      if (sizes[i] < full) throw new XverseError("bad_gguf", `byte-split file ${stem}: part ${parts[i]} is ${sizes[i]} bytes but the other parts before the last are ${full} bytes — it is truncated (interrupted download?); download it again`);
    }
    const last = sizes[sizes.length - 1];
    if (last > full) throw new XverseError("bad_gguf", `byte-split file ${stem}: the last part ${parts[parts.length - 1]} (${last} bytes) is larger than the parts before it (${full} bytes) — an earlier part is truncated or the parts come from different splits`);
  }
  return parts;
}

// ---------------------------------------------------------------- sources

/**
 * One file (one part of a byte-split file). Mapped in windows, because one ArrayBuffer may not exceed 4 GiB:
 * window k covers bytes [k·stride, k·stride + 3·stride) of the file (cut at its end), so windows overlap and any
 * range of up to 2·stride bytes lies whole in one of them; each window is its own mmap, made when first needed
 * (a page seen through two windows is still one page of the page cache). Unmapped files are read on demand.
 */
class FilePart {
  private windows: ArrayBuffer[] = [];
  constructor(readonly file: string, readonly start: number, readonly size: number, private readonly addon: Addon | null, private readonly stride: number) {}

  get mapped(): boolean {
    return this.addon !== null;
  }

  /** The window holding [pos, pos + len) of this file and the offset of pos in it; null if none holds all of it. */
  locate(pos: number, len: number): [ArrayBuffer, number] | null {
    if (!this.addon) return null;
    const k = Math.floor(pos / this.stride), w0 = k * this.stride;
    const wLen = Math.min(3 * this.stride, this.size - w0);
    if (pos + len > w0 + wLen) return null;
    let buf = this.windows[k];
    if (!buf) {
      try {
        buf = this.addon.mapFile!(this.file, w0, wLen)!;
      } catch (e) {
        throw new XverseError("not_found", `cannot map ${this.file}: ${(e as Error).message}`);
      }
      this.windows[k] = buf;
    }
    return [buf, pos - w0];
  }

  /** Copies [pos, pos + len) of this file into dst[off…]. */
  read(dst: Uint8Array, off: number, len: number, pos: number, display: string): void {
    if (this.addon) {
      for (let done = 0; done < len;) {
        const p = pos + done, k = Math.floor(p / this.stride);
        const n = Math.min(len - done, Math.min((k + 3) * this.stride, this.size) - p);
        const [buf, at] = this.locate(p, n)!;
        dst.set(new Uint8Array(buf, at, n), off + done);
        done += n;
      }
      return;
    }
    let fd: number;
    try {
      fd = openSync(this.file, "r");
    } catch (e) {
      throw new XverseError("not_found", `cannot open ${this.file}: ${(e as Error).message}`);
    }
    try {
      for (let done = 0; done < len;) {
        const n = readSync(fd, dst, off + done, Math.min(len - done, 1 << 30), pos + done);
        if (n === 0) throw new XverseError("bad_checkpoint", `${display}: ${this.file} ended at byte ${pos + done} (it was ${this.size} bytes when opened): the file changed or is truncated`);
        done += n;
      }
    } finally {
      closeSync(fd);
    }
  }
}

function allocBytes(len: number, what: string): Uint8Array {
  try {
    // its own ArrayBuffer (never Buffer's shared pool), so a Float32Array/Uint16Array view of it is aligned
    return Buffer.allocUnsafeSlow(len);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new XverseError("out_of_memory", `${what}: cannot allocate ${len} bytes: ${e.message}`, { cause: e });
  }
}

/** Window stride (windows are 3 strides long: 3 GiB, under the 4 GiB ArrayBuffer limit). */
const WINDOW_STRIDE = 1 << 30;

/**
 * Opens a file (or the byte-split parts `path` names) for reading tensors. Maps it when the addon can and
 * opts.mmap is not false; errors name the file and what to do.
 */
export function openBytes(path: string, opts: OpenBytesOptions & { windowStride?: number } = {}): ByteSource {
  const files = byteSplitParts(path) ?? [path];
  const addon = opts.mmap === false ? null : mapper();
  const stride = opts.windowStride ?? WINDOW_STRIDE;
  const parts: FilePart[] = [];
  let start = 0;
  for (const file of files) {
    let st;
    try {
      st = statSync(file);
    } catch (e) {
      throw new XverseError("not_found", `cannot open ${file}: ${(e as Error).message}`);
    }
    if (!st.isFile()) throw new XverseError("bad_model_path", `${file} is not a regular file (a directory?)`);
    parts.push(new FilePart(file, start, st.size, addon, stride));
    start += st.size;
  }
  const size = start;
  const partAt = (pos: number): number => {
    let lo = 0, hi = parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (parts[mid].start <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  const check = (pos: number, len: number, what: string) => {
    if (!(Number.isSafeInteger(pos) && Number.isSafeInteger(len) && pos >= 0 && len >= 0 && pos + len <= size)) {
      throw new XverseError("bad_checkpoint", `${path}: ${what} (bytes ${pos}…${pos + len}) lies outside the ${size}-byte file`);
    }
  };
  const readAt = (dst: Uint8Array, off: number, len: number, pos: number): number => {
    len = Math.max(0, Math.min(len, size - pos));
    for (let done = 0; done < len;) {
      const p = parts[partAt(pos + done)];
      const inPart = pos + done - p.start;
      const n = Math.min(len - done, p.size - inPart);
      p.read(dst, off + done, n, inPart, path);
      done += n;
    }
    return len;
  };
  /** Calls f over the mapped windows that `bytes` would use for [pos, pos + len), one stride at a time. */
  const eachWindow = (pos: number, len: number, f: (buf: ArrayBuffer, at: number, n: number) => void) => {
    if (len === 0) return;
    check(pos, len, "range");
    for (let q = pos; q < pos + len;) {
      const p = parts[partAt(q)];
      const inPart = q - p.start;
      const n = Math.min(pos + len - q, p.size - inPart, stride - (inPart % stride));
      const at = p.locate(inPart, n);
      if (at && n > 0) f(at[0], at[1], n);
      q += n;
    }
  };
  return {
    path, parts: files, size, mapped: addon !== null, readAt,
    bytes(pos, len, what) {
      check(pos, len, what);
      const p = parts[partAt(pos)];
      const at = pos + len <= p.start + p.size ? p.locate(pos - p.start, len) : null;
      let out: Uint8Array;
      if (at) {
        if (opts.populate && addon?.populate && len > 0) addon.populate(at[0], at[1], len);
        out = Buffer.from(at[0], at[1], len); // a view (a Buffer, as readGgufTensorBytes always returned)
      } else {
        // not mapped, or straddling two parts (or two windows): one copy of this range only
        out = allocBytes(len, `${path}: ${what}`);
        readAt(out, 0, len, pos);
      }
      opts.onRead?.(len);
      return out;
    },
    populate(pos, len) {
      if (addon?.populate) eachWindow(pos, len, (buf, at, n) => addon.populate!(buf, at, n));
    },
    release(pos, len) {
      if (addon?.release) eachWindow(pos, len, (buf, at, n) => addon.release!(buf, at, n));
    },
  };
}

// (in its own file so browser-safe readers share it without this file's fs imports)
export { alignedView } from "./aligned.js";
