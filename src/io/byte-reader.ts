/**
 * Random access to a file's bytes, the one interface model loading uses where files are not on a local disk:
 * a browser File or Blob (the file picker), a URL read with HTTP Range requests, or bytes already in memory.
 * Node files have their own implementation in byte-reader-node.ts (fs), so this file stays browser-safe.
 */
import { XverseError } from "../errors.js";

export interface ByteReader {
  /** The file's name (or URL), for messages. */
  readonly name: string;
  /** Total bytes. */
  readonly size: number;
  /** Bytes [offset, offset + length): exactly `length` of them, on their own ArrayBuffer. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

function checkRange(r: { name: string; size: number }, offset: number, length: number): void {
  if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= r.size)) {
    throw new XverseError("bad_checkpoint", `${r.name}: read of ${length} bytes at ${offset} lies outside the ${r.size}-byte file (truncated?)`);
  }
}

/** Bytes in memory (a whole small file, or a test). */
export function bytesReader(bytes: Uint8Array, name: string): ByteReader {
  return {
    name, size: bytes.length,
    async read(offset, length) {
      checkRange(this, offset, length);
      return bytes.slice(offset, offset + length);
    },
  };
}

/** A Blob or File: each read slices it, so a multi-GB file is never held whole. */
export function blobReader(blob: Blob, name = (blob as Blob & { name?: string }).name ?? "blob"): ByteReader {
  return {
    name, size: blob.size,
    async read(offset, length) {
      checkRange(this, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

export interface FetchReaderOptions {
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
  /** Extra request headers (e.g. Authorization). */
  headers?: Record<string, string>;
}

/**
 * A URL read with HTTP Range requests. The size comes from the first request's Content-Range; a server that
 * ignores Range (200 with the whole body) still works: that body is kept and sliced.
 */
export async function fetchReader(url: string, opts: FetchReaderOptions = {}): Promise<ByteReader> {
  const f = opts.fetch ?? fetch;
  const get = async (range: string): Promise<Response> => {
    let res: Response;
    try {
      res = await f(url, { headers: { ...opts.headers, Range: range } });
    } catch (e) {
      throw new XverseError("not_found", `cannot fetch ${url}: ${(e as Error).message}`, { cause: e });
    }
    if (res.status !== 206 && res.status !== 200) {
      throw new XverseError("not_found", `${url}: HTTP ${res.status} ${res.statusText}; check the URL (or that the server serves the model files)`);
    }
    return res;
  };
  const first = await get("bytes=0-0");
  if (first.status === 200) return bytesReader(new Uint8Array(await first.arrayBuffer()), url);
  const total = /\/(\d+)\s*$/.exec(first.headers.get("content-range") ?? "");
  await first.arrayBuffer();
  if (!total) throw new XverseError("bad_checkpoint", `${url}: the 206 reply has no Content-Range total, so the file size is unknown`);
  const size = Number(total[1]);
  return {
    name: url, size,
    async read(offset, length) {
      checkRange({ name: url, size }, offset, length);
      if (length === 0) return new Uint8Array(0);
      const res = await get(`bytes=${offset}-${offset + length - 1}`);
      const body = new Uint8Array(await res.arrayBuffer());
      // a 200 here means the server dropped Range support midway: take our part of the whole body
      const got = res.status === 200 ? body.slice(offset, offset + length) : body;
      if (got.length !== length) {
        throw new XverseError("bad_checkpoint", `${url}: asked for ${length} bytes at ${offset}, got ${got.length} (file changed on the server?)`);
      }
      return got;
    },
  };
}

/** The whole file as text (config.json, tokenizer.json). */
export async function readText(r: ByteReader): Promise<string> {
  return new TextDecoder("utf-8").decode(await r.read(0, r.size));
}

/** The whole file as a JSON object; errors name the file. */
export async function readJson(r: ByteReader): Promise<Record<string, unknown>> {
  const text = await readText(r);
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("expected a JSON object");
    return v as Record<string, unknown>;
  } catch (e) {
    throw new XverseError("bad_json", `${r.name} is not valid JSON (${(e as Error).message}); pick the right file or re-download it`);
  }
}
