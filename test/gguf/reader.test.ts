/**
 * GGUF reader: llama.cpp's own vocab-only files parse; our writer's output reads back value for value; damaged
 * files give specific XverseErrors; a seeded fuzzer mutates a valid file thousands of times and only
 * XverseErrors (never RangeError / TypeError / a hang) come out.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XverseError } from "../../src/errors.js";
import { parseGgufBytes, readGguf, readGgufTensorBytes } from "../../src/io/gguf.js";
import { dequantize, quantizeQ8_0 } from "../../src/gguf/quants.js";
import { GGML, GGML_TYPES } from "../../src/gguf/types.js";
import { writeGguf } from "../../src/gguf/writer.js";
import { fixture } from "../helpers/peers.js";

const dir = mkdtempSync(join(tmpdir(), "xverse-gguf-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));

test("llama.cpp's vocab-only GGUFs parse (v3, tokenizer metadata)", () => {
  const vdir = fixture("llama.cpp-vocab-tests");
  const files = readdirSync(vdir).filter((f) => f.endsWith(".gguf"));
  assert.ok(files.length >= 9, `found ${files.length} vocab files`);
  const sizes: Record<string, number> = { "ggml-vocab-llama-spm.gguf": 32000, "ggml-vocab-llama-bpe.gguf": 128256, "ggml-vocab-gpt-2.gguf": 50257, "ggml-vocab-qwen2.gguf": 151936 };
  for (const f of files) {
    const g = readGguf(join(vdir, f));
    assert.equal(g.version, 3);
    assert.equal(g.tensors.length, 0);
    assert.equal(g.alignment, 32);
    const tokens = g.metadata["tokenizer.ggml.tokens"] as string[];
    assert.ok(Array.isArray(tokens) && tokens.length > 1000, f);
    assert.equal((g.metadata["tokenizer.ggml.token_type"] as number[]).length, tokens.length, f);
    assert.equal(g.metadataTypes["tokenizer.ggml.tokens"], "ARRAY[STRING]");
    if (sizes[f]) assert.equal(tokens.length, sizes[f], f);
    if (g.metadata["tokenizer.ggml.model"] === "gpt2") assert.ok((g.metadata["tokenizer.ggml.merges"] as string[]).length > 1000, f);
  }
  const spm = readGguf(join(vdir, "ggml-vocab-llama-spm.gguf")).metadata;
  assert.equal(spm["tokenizer.ggml.model"], "llama");
  assert.equal((spm["tokenizer.ggml.tokens"] as string[])[259], "▁▁");
  assert.equal((spm["tokenizer.ggml.scores"] as number[]).length, 32000);
});

test("writer → reader: every value type, nested arrays, 64-bit values, alignment, tensor bytes", () => {
  const path = join(dir, "types.gguf");
  const q = quantizeQ8_0(Float32Array.from({ length: 64 }, (_, i) => i / 7 - 4));
  const f = new Float32Array([1, 2, 3]);
  const metadata: Record<string, unknown> = {
    u8: 255, i8: -128, u16: 65535, i16: -32768, u32: 4294967295, i32: -2147483648, f32: 0.5, b: true, s: "héllo ▁",
    u64small: 12345, u64big: 2n ** 63n + 5n, i64neg: -(2n ** 62n), f64: Math.PI,
    arr_str: ["a", "", "▁b"], arr_f32: [0.25, -1], arr_nested: [[1, 2], [], [3]], arr_bool: [true, false],
    "general.alignment": 64,
  };
  const types: Record<string, string> = {
    u8: "UINT8", i8: "INT8", u16: "UINT16", i16: "INT16", u32: "UINT32", i32: "INT32", f32: "FLOAT32", u64small: "UINT64",
    u64big: "UINT64", i64neg: "INT64", f64: "FLOAT64", arr_f32: "ARRAY[FLOAT32]", arr_nested: "ARRAY[ARRAY[UINT16]]",
    arr_bool: "ARRAY[BOOL]", "general.alignment": "UINT32",
  };
  writeGguf(path, {
    metadata, types, alignment: 64,
    tensors: [
      { name: "a", type: GGML.F32, shape: [3], data: () => new Uint8Array(f.buffer) },
      { name: "b", type: GGML.Q8_0, shape: [2, 32], data: () => q },
    ],
  });
  const g = readGguf(path);
  assert.equal(g.version, 3);
  assert.equal(g.alignment, 64);
  assert.deepEqual({ ...g.metadata }, metadata);
  assert.deepEqual({ ...g.metadataTypes }, { ...types, b: "BOOL", s: "STRING", arr_str: "ARRAY[STRING]" });
  assert.deepEqual(g.tensors.map((t) => [t.name, t.typeName, t.dims, t.shape, t.offset % 64]), [["a", "F32", [3], [3], 0], ["b", "Q8_0", [32, 2], [2, 32], 0]]);
  assert.equal(g.dataOffset % 64, 0);
  assert.deepEqual(dequantize(GGML.F32, readGgufTensorBytes(g, g.tensors[0]), 3), f);
  assert.deepEqual(readGgufTensorBytes(g, g.tensors[1]), Buffer.from(q));
});

/** A one-tensor file with no metadata; returns its bytes and the positions of the tensor's type and offset. */
function oneTensorFile(): { bytes: Buffer; typePos: number; offsetPos: number } {
  const path = join(dir, "one.gguf");
  writeGguf(path, { metadata: {}, tensors: [{ name: "w", type: GGML.F32, shape: [2, 8], data: () => new Uint8Array(64) }] });
  const bytes = readFileSync(path);
  // header 24 bytes; name: u64 length + 1 byte; n_dims u32; 2 × u64 dims; then type u32, offset u64
  const typePos = 24 + 8 + 1 + 4 + 16;
  return { bytes, typePos, offsetPos: typePos + 4 };
}

function parseBytes(b: Uint8Array, name = "case.gguf"): ReturnType<typeof readGguf> {
  const p = join(dir, name);
  writeFileSync(p, b);
  return readGguf(p);
}

test("damaged files: specific, clear errors", () => {
  const { bytes, typePos, offsetPos } = oneTensorFile();
  assert.equal(parseBytes(bytes).tensors[0].typeName, "F32");
  const err = (b: Uint8Array, re: RegExp) => assert.throws(() => parseBytes(b), (e: unknown) => e instanceof XverseError && re.test(e.message));

  err(bytes.subarray(0, bytes.length - 1), /"w".*runs past the end of the file.*truncated/);
  err(bytes.subarray(0, 50), /truncated while reading dimension 1 of tensor "w" at byte 45/);
  err(bytes.subarray(0, 30), /tensor count is 1, more than the 30-byte file can hold/);
  err(bytes.subarray(0, 2), /only 2 bytes long/);
  const unknown = Buffer.from(bytes); unknown.writeUInt32LE(99, typePos);
  err(unknown, /tensor "w" has unknown ggml type 99/);
  const mis = Buffer.from(bytes); mis.writeBigUInt64LE(4n, offsetPos);
  err(mis, /offset 4 is not a multiple of the alignment 32/);
  const magic = Buffer.from(bytes); magic.write("GGML", 0, "latin1");
  err(magic, /bad magic "GGML" \(expected "GGUF"\)/);
  const v1 = Buffer.from(bytes); v1.writeUInt32LE(1, 4);
  err(v1, /version 1 .* not supported/);
  const be = Buffer.from(bytes); be.writeUInt32BE(3, 4);
  err(be, /big-endian/);
  const huge = Buffer.from(bytes); huge.writeBigUInt64LE(2n ** 60n, 8);
  err(huge, /tensor count is \d+, more than the 160-byte file can hold/);
  const strlen = Buffer.from(bytes); strlen.writeBigUInt64LE(2n ** 40n, 24);
  err(strlen, /length of name of tensor 0 is \d+, more than the 160-byte file can hold/);
  assert.throws(() => readGguf(join(dir, "missing.gguf")), /cannot open/);
});

/** Seeded xorshift32. */
function rand(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

test("fuzz: 3000 seeded mutations of a valid file give only XverseErrors", () => {
  const path = join(dir, "base.gguf");
  writeGguf(path, {
    metadata: { "general.architecture": "llama", n: 7, big: 2n ** 60n, s: "abc", toks: ["a", "bb", "ccc"], sc: [0.5, 1], nest: [[1], [2, 3]] },
    types: { sc: "ARRAY[FLOAT32]", nest: "ARRAY[ARRAY[INT8]]" },
    tensors: [
      { name: "x", type: GGML.Q8_0, shape: [2, 32], data: () => quantizeQ8_0(new Float32Array(64).fill(1)) },
      { name: "y", type: GGML.F16, shape: [4], data: () => new Uint8Array(8) },
    ],
  });
  const base = readFileSync(path);
  const headerEnd = readGguf(path).dataOffset;
  const r = rand(12345);
  const counts: Record<string, number> = { ok: 0 };
  const t0 = Date.now();
  for (let it = 0; it < 3000; it++) {
    let b = Buffer.from(base);
    const kind = it % 4;
    if (kind === 0) {
      // flip 1–4 random bytes of the header
      for (let k = 1 + Math.floor(r() * 4); k > 0; k--) b[Math.floor(r() * headerEnd)] = Math.floor(r() * 256);
    } else if (kind === 1) {
      b = b.subarray(0, Math.floor(r() * b.length));
    } else if (kind === 2) {
      // overwrite an aligned 8-byte word (a count, length or offset) with an extreme value
      const pos = 8 * Math.floor(r() * (headerEnd / 8 - 1));
      b.writeBigUInt64LE([0n, 2n ** 64n - 1n, 2n ** 32n, BigInt(Math.floor(r() * 1000))][Math.floor(r() * 4)], pos);
    } else {
      // set one byte to a small value (type ids, dim counts)
      b[Math.floor(r() * headerEnd)] = Math.floor(r() * 16);
    }
    try {
      // in memory (no file I/O per case); the tensor bytes are sliced the way readGgufTensorBytes reads them
      const g = parseGgufBytes(b, "fuzz.gguf");
      for (const t of g.tensors) if (GGML_TYPES.has(t.type)) {
        const start = g.dataOffset + t.offset;
        try { dequantize(t.type, b.subarray(start, start + t.nbytes), t.nelements); } catch (e) { if (!(e instanceof XverseError)) throw e; }
      }
      counts.ok++;
    } catch (e) {
      if (!(e instanceof XverseError)) assert.fail(`iteration ${it}: ${(e as Error).name}: ${(e as Error).message}`);
      counts[e.code] = (counts[e.code] ?? 0) + 1;
    }
  }
  assert.ok(Date.now() - t0 < 30000, "fuzzing took too long (a hang?)");
  assert.ok((counts.bad_gguf ?? 0) > 1000, JSON.stringify(counts));
});

test("fuzz: 600 mutations of a small model file through openGgufModel, parseConfig and every tensor read", async () => {
  const { openGgufModel } = await import("../../src/io/gguf-model.js");
  const { parseConfig } = await import("../../src/config.js");
  const H = 32, V = 8, FF = 64;
  const f32 = (n: number) => () => new Uint8Array(new Float32Array(n).fill(0.5).buffer);
  const q8 = (n: number) => () => quantizeQ8_0(new Float32Array(n).fill(0.25));
  const path = join(dir, "model.gguf");
  writeGguf(path, {
    metadata: {
      "general.architecture": "xverse", "xverse.context_length": 64, "xverse.embedding_length": H, "xverse.block_count": 1,
      "xverse.feed_forward_length": FF, "xverse.attention.head_count": 2, "xverse.attention.head_count_kv": 1,
      "xverse.attention.layer_norm_rms_epsilon": 1e-6, "xverse.rope.freq_base": 10000, "tokenizer.ggml.model": "llama",
      "tokenizer.ggml.tokens": ["<unk>", "<s>", "</s>", "a", "b", "c", "d", "e"], "tokenizer.ggml.bos_token_id": 1,
    },
    types: { "xverse.attention.layer_norm_rms_epsilon": "FLOAT32", "xverse.rope.freq_base": "FLOAT32" },
    tensors: [
      { name: "token_embd.weight", type: GGML.Q8_0, shape: [V, H], data: q8(V * H) },
      { name: "blk.0.attn_norm.weight", type: GGML.F32, shape: [H], data: f32(H) },
      { name: "blk.0.attn_q.weight", type: GGML.Q8_0, shape: [H, H], data: q8(H * H) },
      { name: "blk.0.attn_k.weight", type: GGML.Q8_0, shape: [H / 2, H], data: q8((H * H) / 2) },
      { name: "blk.0.ffn_down.weight", type: GGML.F32, shape: [H, FF], data: f32(H * FF) },
      { name: "output.weight", type: GGML.Q8_0, shape: [V, H], data: q8(V * H) },
    ],
  });
  const base = readFileSync(path);
  const headerEnd = readGguf(path).dataOffset;
  const r = rand(777);
  let opened = 0;
  for (let it = 0; it < 600; it++) {
    const b = Buffer.from(base);
    for (let k = 1 + Math.floor(r() * 3); k > 0; k--) b[Math.floor(r() * headerEnd)] = Math.floor(r() * 256);
    try {
      writeFileSync(join(dir, "fuzz-model.gguf"), b);
      const g = openGgufModel(join(dir, "fuzz-model.gguf"));
      for (const n of g.source.names()) g.source.read(n);
      parseConfig(g.config, "fuzz-model.gguf");
      opened++;
    } catch (e) {
      if (!(e instanceof XverseError)) assert.fail(`iteration ${it}: ${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  assert.ok(opened > 20, `${opened} mutated files still opened`);
});
