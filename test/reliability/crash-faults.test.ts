/**
 * SIGKILL in the middle of a write (test/helpers/kill-after-bytes.ts kills the CLI after N bytes): nothing appears
 * under the final name, a previous output stays byte for byte, and the rerun both works and sweeps away the temp
 * file the killed process could not remove. Plus, where this machine lets a test mount a small tmpfs (root in a
 * container that allows it), a real full disk and a real read-only file system under the CLI.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fixture, repoRoot } from "../helpers/peers.js";

const bin = join(repoRoot, "bin", "xverse.js");
const killer = join(repoRoot, "dist", "test", "helpers", "kill-after-bytes.js");
const tiny = fixture("golden", "tiny-xverse");

function xverse(args: string[], killAfter = 0) {
  return spawnSync(process.execPath, [...(killAfter ? ["--import", killer] : []), bin, ...args], {
    encoding: "utf8", env: { ...process.env, XV_KILL_AFTER_BYTES: String(killAfter) },
  });
}

test("SIGKILL mid-write: quantize and convert leave no partial output, the old file intact, and rerun cleans up", () => {
  const work = mkdtempSync(join(tmpdir(), "xv-crash-"));
  try {
    // quantize: a new directory — after the kill there is none under the final name
    const q = join(work, "q8");
    const k1 = xverse(["quantize", "--model", tiny, "--bits", "8", "--out", q], 200_000);
    assert.equal(k1.signal, "SIGKILL", k1.stderr);
    assert.ok(!existsSync(q), "no partial quantized directory");
    assert.ok(readdirSync(work).some((f) => f.startsWith(".q8.tmp-")), "the killed run's temp dir is there");
    const r1 = xverse(["quantize", "--model", tiny, "--bits", "8", "--out", q]);
    assert.equal(r1.status, 0, r1.stderr);
    assert.deepEqual(readdirSync(work), ["q8"], "the rerun removed the dead run's temp directory");

    // convert over an existing GGUF: the old one survives the kill byte for byte
    const g = join(work, "m.gguf");
    const c0 = xverse(["convert", "--model", tiny, "--to", "gguf", "--type", "q8_0", "--out", g]);
    assert.equal(c0.status, 0, c0.stderr);
    const before = readFileSync(g);
    for (const at of [1, 5000, Math.floor(before.length / 2)]) {
      const k = xverse(["convert", "--model", tiny, "--to", "gguf", "--type", "f32", "--out", g], at);
      assert.equal(k.signal, "SIGKILL", `kill after ${at} bytes: ${k.stderr}`);
      assert.ok(readFileSync(g).equals(before), `kill after ${at} bytes: the previous GGUF is intact`);
    }
    const c1 = xverse(["convert", "--model", tiny, "--to", "gguf", "--type", "f32", "--out", g]);
    assert.equal(c1.status, 0, c1.stderr);
    assert.ok(readFileSync(g).length > before.length, "f32 replaced q8_0");
    assert.deepEqual(readdirSync(work).sort(), ["m.gguf", "q8"], "no temp files left");
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test("SIGKILL mid-checkpoint: finetune --resume continues from the last whole checkpoint", () => {
  const work = mkdtempSync(join(tmpdir(), "xv-crash-ft-"));
  try {
    const data = join(work, "data.jsonl");
    writeFileSync(data, Array.from({ length: 8 }, (_, i) => JSON.stringify({ messages: [{ role: "user", content: `q${i}` }, { role: "assistant", content: `a${i} ok` }] })).join("\n") + "\n");
    const out = join(work, "run");
    const common = ["finetune", "--data", data, "--lora", "--rank", "2", "--batch-size", "2", "--save-every", "1", "--quiet"];
    const args = [...common, "--max-steps", "4", "--out", out];
    // one checkpoint is ~ the LoRA weights + 2 Adam moments: kill inside the second one
    const first = xverse([...common, "--max-steps", "1", "--out", join(work, "probe")]);
    assert.equal(first.status, 0, first.stderr);
    const ckBytes = readdirSync(join(work, "probe", "checkpoint")).reduce((n, f) => n + readFileSync(join(work, "probe", "checkpoint", f)).length, 0);
    const k = xverse(args, Math.floor(ckBytes * 1.5));
    assert.equal(k.signal, "SIGKILL", k.stderr);
    const state = JSON.parse(readFileSync(join(out, "checkpoint", "trainer_state.json"), "utf8"));
    assert.equal(state.step, 1, "the whole first checkpoint is there, not a torn second one");
    const r = xverse([...args, "--resume"]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(readFileSync(join(out, "checkpoint", "trainer_state.json"), "utf8")).step, 4);
    assert.ok(!readdirSync(out).some((f) => f.startsWith(".checkpoint.")), `no temp checkpoint left: ${readdirSync(out)}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

/** Mounts a tmpfs of `size` at a new directory (ro: read-only); null where this machine does not allow it. */
function tmpfs(size: string, ro = false): string | null {
  if (process.platform !== "linux" || process.getuid?.() !== 0) return null;
  const dir = mkdtempSync(join(tmpdir(), "xv-tmpfs-"));
  const r = spawnSync("mount", ["-t", "tmpfs", "-o", `${ro ? "ro," : ""}size=${size}`, "tmpfs", dir], { encoding: "utf8" });
  if (r.status !== 0) { rmSync(dir, { recursive: true, force: true }); return null; }
  return dir;
}
function unmount(dir: string): void {
  spawnSync("umount", [dir]);
  rmSync(dir, { recursive: true, force: true });
}

test("a real full disk and a real read-only file system (tmpfs; skipped where mounting is not allowed)", (t) => {
  const full = tmpfs("256k"), ro = tmpfs("64k", true);
  if (!full || !ro) { if (full) unmount(full); if (ro) unmount(ro); t.skip("cannot mount a tmpfs here"); return; }
  try {
    const cases: [string[], RegExp][] = [
      [["quantize", "--model", tiny, "--bits", "8", "--out", join(full, "q8")], /ENOSPC.*disk is full/],
      [["convert", "--model", tiny, "--to", "gguf", "--type", "q8_0", "--out", join(full, "m.gguf")], /ENOSPC.*disk is full/],
      [["quantize", "--model", tiny, "--bits", "8", "--out", join(ro, "q8")], /EROFS.*read-only file system/],
      [["convert", "--model", tiny, "--to", "gguf", "--type", "q8_0", "--out", join(ro, "m.gguf")], /EROFS|read-only file system/],
    ];
    for (const [args, msg] of cases) {
      const r = xverse(args);
      assert.equal(r.status, 1, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.trim().split("\n").length, 1, `one line, no stack: ${r.stderr}`);
    }
    assert.deepEqual(readdirSync(full), [], "nothing left on the full disk");
    mkdirSync(join(full, "ok"));
  } finally {
    unmount(full);
    unmount(ro);
  }
});
