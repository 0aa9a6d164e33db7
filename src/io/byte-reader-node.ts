/** The ByteReader interface (byte-reader.ts) over a local file, for Node: positioned reads, nothing held whole. */
import { open } from "node:fs/promises";
import { XverseError } from "../errors.js";
import type { ByteReader } from "./byte-reader.js";

export async function fileReader(path: string): Promise<ByteReader & { close(): Promise<void> }> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw new XverseError("not_found", `cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  const size = (await fh.stat()).size;
  return {
    name: path, size,
    async read(offset, length) {
      if (!(offset >= 0 && length >= 0 && offset + length <= size)) {
        throw new XverseError("bad_checkpoint", `${path}: read of ${length} bytes at ${offset} lies outside the ${size}-byte file (truncated?)`);
      }
      const out = new Uint8Array(length);
      for (let done = 0; done < length;) {
        const { bytesRead } = await fh.read(out, done, length - done, offset + done);
        if (bytesRead === 0) throw new XverseError("bad_checkpoint", `${path}: unexpected end of file at byte ${offset + done}; the file is truncated`);
        done += bytesRead;
      }
      return out;
    },
    close: () => fh.close(),
  };
}
