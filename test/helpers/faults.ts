/**
 * Fault injection for write paths, in-process: node:fs functions are replaced on the CommonJS module object and
 * `syncBuiltinESMExports()` pushes the replacements into every ESM `import { writeSync } from "node:fs"`, so the
 * code under test is unchanged. A disk that fills after N bytes (ENOSPC, the last write partial, as a real full
 * disk does) or a read-only destination (EROFS on anything that would create or change a file under `dir`).
 */
import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { resolve } from "node:path";

type Fs = typeof fs;
const errno = (code: string, syscall: string, path?: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`${code}: ${code === "ENOSPC" ? "no space left on device" : "read-only file system"}, ${syscall}${path ? ` '${path}'` : ""}`),
    { code, syscall, errno: code === "ENOSPC" ? -28 : -30, ...(path && { path }) });

export interface Fault {
  /** ENOSPC once `bytes` have been written under `dir`; EROFS on every create / write / rename there. */
  kind: "ENOSPC" | "EROFS";
  dir: string;
  bytes?: number;
}

/** Installs the fault; returns the function that removes it. */
export function injectFault(f: Fault): () => void {
  const root = resolve(f.dir);
  const under = (p: unknown) => typeof p === "string" && resolve(p).startsWith(root);
  const saved: Partial<Fs> = {};
  const fdUnder = new Set<number>();
  let left = f.bytes ?? 0;
  const patch = <K extends keyof Fs>(k: K, impl: (orig: Fs[K]) => Fs[K]) => { saved[k] = fs[k]; (fs as Record<string, unknown>)[k] = impl(fs[k]); };
  // how many of n bytes still fit; throws once nothing does
  const take = (n: number, syscall: string, p?: string): number => {
    if (left <= 0 && n > 0) throw errno("ENOSPC", syscall, p);
    const k = Math.min(n, left);
    left -= k;
    return k;
  };
  patch("openSync", (orig) => ((p: fs.PathLike, flags?: fs.OpenMode, mode?: fs.Mode) => {
    const writes = typeof flags === "string" ? /[wax+]/.test(flags) : typeof flags === "number" && (flags & 3) !== 0;
    if (f.kind === "EROFS" && writes && under(p)) throw errno("EROFS", "open", String(p));
    const fd = (orig as (...a: unknown[]) => number)(p, flags, mode);
    if (under(p)) fdUnder.add(fd); else fdUnder.delete(fd);
    return fd;
  }) as Fs["openSync"]);
  patch("writeSync", (orig) => ((fd: number, buf: NodeJS.ArrayBufferView | string, ...rest: unknown[]) => {
    if (f.kind !== "ENOSPC" || !fdUnder.has(fd) || typeof buf === "string") return (orig as (...a: unknown[]) => number)(fd, buf, ...rest);
    const [off = 0, len = buf.byteLength - (off as number), pos] = rest as [number?, number?, number?];
    const k = take(len, "write");
    return (orig as (...a: unknown[]) => number)(fd, buf, off, k, pos);
  }) as Fs["writeSync"]);
  const wholeFile = (name: "writeFileSync" | "appendFileSync") => patch(name, (orig) => ((p: fs.PathOrFileDescriptor, data: string | NodeJS.ArrayBufferView, o?: fs.WriteFileOptions) => {
    if (!under(p)) return (orig as (...a: unknown[]) => void)(p, data, o);
    if (f.kind === "EROFS") throw errno("EROFS", "open", String(p));
    const bytes = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const k = Math.min(bytes.length, Math.max(0, left));
    (orig as (...a: unknown[]) => void)(p, bytes.subarray(0, k), o);
    take(k, "write");
    if (k < bytes.length) throw errno("ENOSPC", "write", String(p));
  }) as Fs[typeof name]);
  wholeFile("writeFileSync");
  wholeFile("appendFileSync");
  patch("copyFileSync", (orig) => ((src: fs.PathLike, dst: fs.PathLike, mode?: number) => {
    if (!under(dst)) return orig(src, dst, mode);
    if (f.kind === "EROFS") throw errno("EROFS", "copyfile", String(dst));
    const data = fs.readFileSync(src);
    (fs.writeFileSync as (p: fs.PathLike, d: Buffer) => void)(dst, data);
  }) as Fs["copyFileSync"]);
  for (const name of ["mkdirSync", "renameSync", "mkdtempSync"] as const) {
    patch(name, (orig) => ((p: fs.PathLike, ...rest: unknown[]) => {
      if (f.kind === "EROFS" && under(p) && !(name === "mkdirSync" && fs.existsSync(p as string))) throw errno("EROFS", name.replace(/Sync$/, "").toLowerCase(), String(p));
      return (orig as (...a: unknown[]) => unknown)(p, ...rest);
    }) as never);
  }
  syncBuiltinESMExports();
  return () => {
    Object.assign(fs, saved);
    syncBuiltinESMExports();
  };
}

/** Every file under dir (relative paths, sorted) with its bytes, to compare before and after. */
export function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string, rel: string) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = `${d}/${e.name}`, r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) { out.set(r + "/", Buffer.alloc(0)); walk(p, r); } else out.set(r, fs.readFileSync(p));
    }
  };
  walk(dir, "");
  return out;
}
