/**
 * Load progress: loadModel reports (done, total) bytes after every tensor — for a safetensors directory and for a
 * GGUF file, monotone, ending at exactly the total — and the CLI's line draws only on a terminal, only for models
 * over 1 GB, at most every 100 ms, and clears itself at the end.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { exportGguf } from "../../src/gguf/export.js";
import { openCheckpoint } from "../../src/io/checkpoint.js";
import { readGguf } from "../../src/io/gguf.js";
import { loadModel } from "../../src/model/load.js";
import { loadProgress } from "../../src/cli/progress.js";
import { DTYPE_BYTES, numel } from "../../src/tensor.js";
import { fixture } from "../helpers/peers.js";

const stories = fixture("golden", "stories260K");

function monotoneToTotal(seen: Array<[number, number]>, total: number): void {
  assert.ok(seen.length > 0);
  for (let i = 0; i < seen.length; i++) {
    assert.equal(seen[i][1], total);
    if (i > 0) assert.ok(seen[i][0] >= seen[i - 1][0], `step ${i} goes back`);
  }
  assert.equal(seen[seen.length - 1][0], total);
}

test("loadModel reports progress in bytes: a safetensors directory and a GGUF file, ending at their totals", async () => {
  const src = openCheckpoint(stories);
  const total = src.names().reduce((n, name) => {
    const i = src.info(name);
    return n + numel(i.shape) * DTYPE_BYTES[i.dtype];
  }, 0);
  src.close();
  const seen: Array<[number, number]> = [];
  await loadModel(stories, { onProgress: (d, t) => seen.push([d, t]), onWarning: () => {} });
  monotoneToTotal(seen, total);

  const dir = mkdtempSync(join(tmpdir(), "xverse-progress-"));
  try {
    const path = join(dir, "s.gguf");
    exportGguf(openCheckpoint(stories), loadConfig(stories), join(stories, "tokenizer.json"), path, { type: "q8_0" });
    const g: Array<[number, number]> = [];
    await loadModel(path, { onProgress: (d, t) => g.push([d, t]), onWarning: () => {} });
    monotoneToTotal(g, readGguf(path).tensors.reduce((n, t) => n + t.nbytes, 0));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the CLI's load line: terminals only, models over 1 GB only, throttled, cleared when done", async () => {
  const out: string[] = [];
  const tty = { isTTY: true, write: (s: string) => out.push(s) } as unknown as NodeJS.WriteStream;
  assert.equal(loadProgress({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream), undefined, "no line on pipes and logs");
  const p = loadProgress(tty)!;
  p(1e8, 5e8);
  p(5e8, 5e8);
  assert.deepEqual(out, [], "a 500 MB model loads too fast to need a line");
  p(0.5e9, 2e9);
  p(0.6e9, 2e9); // within 100 ms of the last line: skipped
  assert.equal(out.length, 1);
  assert.match(out[0], /^\r\x1b\[Kloading weights 0\.5\/2\.0 GB 25 % \d+s$/);
  await new Promise((r) => setTimeout(r, 120));
  p(1.5e9, 2e9);
  assert.match(out[1], /loading weights 1\.5\/2\.0 GB 75 %/);
  p(2e9, 2e9);
  assert.equal(out[2], "\r\x1b[K", "the finished line is cleared");
  assert.equal(out.length, 3);
});
