import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSafetensors, writeSafetensors, type TensorToWrite } from "../../src/io/safetensors.js";
import { f32ToBf16, type Tensor } from "../../src/tensor.js";
import { XverseError } from "../../src/errors.js";
import { fixture } from "../helpers/peers.js";

const tmp = mkdtempSync(join(tmpdir(), "xverse-st-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));

const bytes = (t: Tensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

/** A safetensors file from a header (object or raw text), a data area, and optionally a lying length prefix. */
function raw(name: string, header: object | string, data: Uint8Array, headerLen?: bigint): string {
  const h = Buffer.from(typeof header === "string" ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(h.length));
  const path = join(tmp, name);
  writeFileSync(path, Buffer.concat([len, h, data]));
  return path;
}

function rejects(path: string, pattern: RegExp): void {
  assert.throws(() => openSafetensors(path), (e: unknown) => {
    assert.ok(e instanceof XverseError, `expected XverseError, got ${e}`);
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(path), `message names the file: ${e.message}`);
    return true;
  });
}

test("reads a hand-built file: the exact bytes at the header's offsets, in file order, with metadata", () => {
  // Two tensors written in reverse name order; values chosen so every byte is distinct.
  const a = new Float32Array([1.5, -2, 3.25, 1e-20]);
  const b = new Uint16Array([0x3f80, 0xc000, 0x7fc0]);
  const data = Buffer.concat([Buffer.from(b.buffer), Buffer.alloc(2), Buffer.from(a.buffer)]);
  const path = raw("hand.safetensors", {
    __metadata__: { format: "pt" },
    z_bf16: { dtype: "BF16", shape: [3], data_offsets: [0, 6] },
    a_f32: { dtype: "F32", shape: [2, 2], data_offsets: [8, 24] },
  }, data);
  const src = openSafetensors(path);
  assert.deepEqual(src.names(), ["z_bf16", "a_f32"]);
  assert.deepEqual(src.metadata!(), { format: "pt" });
  assert.deepEqual(src.info("a_f32"), { name: "a_f32", dtype: "f32", shape: [2, 2], file: path });
  const ta = src.read("a_f32");
  assert.ok(ta.data instanceof Float32Array);
  assert.deepEqual([...ta.data as Float32Array], [...a]);
  assert.deepEqual([...src.read("z_bf16").data as Uint16Array], [...b]);
  assert.throws(() => src.read("nope"), /no tensor named "nope"/);
  src.close();
});

test("broken files are rejected with messages that say what is wrong and name the file", () => {
  const ok = { w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } };
  rejects(raw("empty-header.safetensors", "", new Uint8Array(0)), /header is not valid UTF-8 JSON/);
  writeFileSync(join(tmp, "tiny.safetensors"), Buffer.from([1, 2, 3]));
  rejects(join(tmp, "tiny.safetensors"), /shorter than the 8-byte header length/);
  rejects(raw("trunc-data.safetensors", ok, new Uint8Array(10)), /data_offsets \[0, 16\] lie outside the 10-byte data area/);
  rejects(raw("huge-header.safetensors", ok, new Uint8Array(16), 1n << 40n), /header length 1099511627776 exceeds/);
  rejects(raw("past-end.safetensors", ok, new Uint8Array(16), 5000n), /header length 5000 runs past the end/);
  rejects(raw("bad-json.safetensors", '{"w": {"dtype": "F32",', new Uint8Array(16)), /header is not valid UTF-8 JSON/);
  rejects(raw("array.safetensors", "[1,2]", new Uint8Array(0)), /header is not a JSON object/);
  rejects(raw("oob.safetensors", { w: { dtype: "F32", shape: [4], data_offsets: [8, 24] } }, new Uint8Array(16)), /outside the 16-byte data area/);
  rejects(raw("neg.safetensors", { w: { dtype: "F32", shape: [4], data_offsets: [-4, 12] } }, new Uint8Array(16)), /invalid data_offsets/);
  rejects(raw("size.safetensors", { w: { dtype: "F32", shape: [3], data_offsets: [0, 16] } }, new Uint8Array(16)), /spans 16 bytes but F32\[3\] needs 12/);
  rejects(raw("overlap.safetensors", {
    a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
    b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
  }, new Uint8Array(16)), /"a" and "b" overlap/);
  rejects(raw("dtype.safetensors", { w: { dtype: "F8_E4M3", shape: [4], data_offsets: [0, 4] } }, new Uint8Array(4)), /dtype F8_E4M3, which is not supported/);
  rejects(raw("shape.safetensors", { w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)), /invalid shape/);
  assert.throws(() => openSafetensors(join(tmp, "absent.safetensors")), /cannot open safetensors file .*absent\.safetensors/);
});

test("a file truncated after its header was read fails the read with a clear error", () => {
  // Validation uses the size at open; a file cut afterwards (e.g. a download being overwritten) must not return zeros.
  const path = raw("cut-later.safetensors", { w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, new Uint8Array(16));
  const src = openSafetensors(path);
  const full = readFileSync(path);
  writeFileSync(path, full.subarray(0, full.length - 8));
  assert.throws(() => src.read("w"), /unexpected end of file while reading tensor "w".*truncated/);
  src.close();
});

const sample = (): Array<{ name: string; tensor: Tensor }> => [
  { name: "f32", tensor: { dtype: "f32", shape: [2, 3], data: new Float32Array([1, -2, 3.5, NaN, Infinity, -0]) } },
  { name: "bf16", tensor: { dtype: "bf16", shape: [3], data: new Uint16Array([0x3f80, 0x7fc1, 0x0001]) } },
  { name: "f16", tensor: { dtype: "f16", shape: [1, 1], data: new Uint16Array([0x3c00]) } },
  { name: "f64", tensor: { dtype: "f64", shape: [2], data: new Float64Array([Math.PI, -1e300]) } },
  { name: "i64", tensor: { dtype: "i64", shape: [2], data: new BigInt64Array([-(2n ** 62n), 7n]) } },
  { name: "i32", tensor: { dtype: "i32", shape: [1], data: new Int32Array([-5]) } },
  { name: "i16", tensor: { dtype: "i16", shape: [1], data: new Int16Array([-300]) } },
  { name: "i8", tensor: { dtype: "i8", shape: [3], data: new Int8Array([-128, 0, 127]) } },
  { name: "u8", tensor: { dtype: "u8", shape: [1], data: new Uint8Array([255]) } },
  { name: "bool", tensor: { dtype: "bool", shape: [2], data: new Uint8Array([1, 0]) } },
  { name: "scalar", tensor: { dtype: "f32", shape: [], data: new Float32Array([42]) } },
  { name: "empty", tensor: { dtype: "f32", shape: [0, 4], data: new Float32Array(0) } },
  // A view into a larger buffer: only its own bytes must be written.
  { name: "view", tensor: { dtype: "i32", shape: [2], data: new Int32Array([9, 10, 11, 12]).subarray(1, 3) } },
];

function assertSameAsSample(path: string): void {
  const src = openSafetensors(path);
  const want = sample();
  assert.deepEqual(src.names(), want.map((t) => t.name));
  for (const { name, tensor } of want) {
    const got = src.read(name);
    assert.equal(got.dtype, tensor.dtype, name);
    assert.deepEqual(got.shape, tensor.shape, name);
    assert.ok(bytes(got).equals(bytes(tensor)), `bytes of ${name}`);
  }
  src.close();
}

test("writer round-trip: every dtype, 0-d and empty tensors, views, metadata; header 8-byte aligned", () => {
  const path = join(tmp, "rt.safetensors");
  writeSafetensors(path, sample(), { format: "pt", note: "x" });
  assertSameAsSample(path);
  const file = readFileSync(path);
  assert.equal(Number(file.readBigUInt64LE(0)) % 8, 0);
  assert.deepEqual(JSON.parse(file.subarray(8, 8 + Number(file.readBigUInt64LE(0))).toString()).__metadata__, { format: "pt", note: "x" });
  // The streaming path (a generator: count and shapes unknown up front) writes the same tensors.
  const path2 = join(tmp, "rt-gen.safetensors");
  writeSafetensors(path2, (function* () { yield* sample(); })(), { format: "pt", note: "x" });
  assert.ok(readFileSync(path2).equals(file), "generator and array paths write identical files");
  // Lazy entries are loaded one at a time, in order, only while their bytes are written.
  const loaded: string[] = [];
  const lazy: TensorToWrite[] = sample().map(({ name, tensor }) => ({
    name, dtype: tensor.dtype, shape: tensor.shape, load: () => { loaded.push(name); return tensor; },
  }));
  const path3 = join(tmp, "rt-lazy.safetensors");
  writeSafetensors(path3, lazy, { format: "pt", note: "x" });
  assert.deepEqual(loaded, sample().map((t) => t.name));
  assert.ok(readFileSync(path3).equals(file));
});

test("a failure mid-write leaves no file at the destination, no temp files, and an old file untouched", () => {
  const dir = mkdtempSync(join(tmp, "fail-"));
  const dest = join(dir, "model.safetensors");
  const boom = (): Tensor => { throw new Error("disk on fire"); };
  const lazy: TensorToWrite[] = [
    { name: "a", tensor: { dtype: "f32", shape: [1024], data: new Float32Array(1024) } },
    { name: "b", dtype: "f32", shape: [4], load: boom },
  ];
  assert.throws(() => writeSafetensors(dest, lazy), /disk on fire/);
  assert.deepEqual(readdirSync(dir), []);
  function* gen() {
    yield { name: "a", tensor: { dtype: "f32", shape: [1], data: new Float32Array(1) } as Tensor };
    throw new Error("generator failed");
  }
  assert.throws(() => writeSafetensors(dest, gen()), /generator failed/);
  assert.deepEqual(readdirSync(dir), []);
  // A declared shape that load() does not honour is an error too, and also leaves nothing.
  assert.throws(() => writeSafetensors(dest, [{ name: "c", dtype: "f32", shape: [2], load: () => ({ dtype: "f32", shape: [3], data: new Float32Array(3) }) }]),
    /declared f32\[2\] but load\(\) gave f32\[3\]/);
  assert.deepEqual(readdirSync(dir), []);
  // Overwriting an existing file: the old content survives a failed rewrite.
  writeSafetensors(dest, sample());
  const before = readFileSync(dest);
  assert.throws(() => writeSafetensors(dest, lazy), /disk on fire/);
  assert.ok(readFileSync(dest).equals(before));
  assert.deepEqual(readdirSync(dir), ["model.safetensors"]);
  assert.throws(() => writeSafetensors(join(dir, "no", "such", "dir.safetensors"), sample()), /cannot create .* check that the directory exists/);
  assert.throws(() => writeSafetensors(dest, [...sample(), sample()[0]]), /"f32" appears twice/);
  assert.ok(existsSync(dest));
});

test("golden f32 model: the sharded bf16 copy equals it rounded to bf16 (reader checked against a second file)", () => {
  // Cross-file oracle: two safetensors files written by the reference tooling must agree after rounding.
  const f32 = openSafetensors(fixture("golden", "tiny-xverse", "model.safetensors"));
  const shard = openSafetensors(fixture("golden", "tiny-xverse-bf16-sharded", "model-00002-of-00002.safetensors"));
  assert.ok(shard.names().length > 0);
  for (const name of shard.names()) {
    const a = f32.read(name), b = shard.read(name);
    assert.deepEqual(a.shape, b.shape, name);
    assert.equal(b.dtype, "bf16");
    const af = a.data as Float32Array, bb = b.data as Uint16Array;
    for (let i = 0; i < af.length; i++) {
      const r = f32ToBf16(af[i]);
      if (r !== bb[i]) assert.fail(`${name}[${i}]: ${r} != ${bb[i]}`);
    }
  }
  f32.close();
  shard.close();
});
