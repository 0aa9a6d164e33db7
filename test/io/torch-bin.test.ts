import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openTorchBin } from "../../src/io/torch-bin.js";
import { openSafetensors } from "../../src/io/safetensors.js";
import { XverseError } from "../../src/errors.js";
import type { Tensor } from "../../src/tensor.js";
import { fixture } from "../helpers/peers.js";
import { binunicode, pk, storedZip } from "./zip-writer.js";

const tmp = mkdtempSync(join(tmpdir(), "xverse-bin-"));
process.on("exit", () => rmSync(tmp, { recursive: true, force: true }));
const bytes = (t: Tensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);

function assertEqualSources(binPath: string, stPath: string): void {
  const bin = openTorchBin(binPath), st = openSafetensors(stPath);
  assert.deepEqual([...bin.names()].sort(), [...st.names()].sort());
  for (const name of st.names()) {
    const a = bin.read(name), b = st.read(name);
    assert.equal(a.dtype, b.dtype, name);
    assert.deepEqual(a.shape, b.shape, name);
    assert.ok(bytes(a).equals(bytes(b)), `bytes of ${name}`);
    assert.deepEqual(bin.info(name), { name, dtype: b.dtype, shape: b.shape, file: binPath });
  }
  bin.close();
  st.close();
}

test("odd_tensors.bin equals odd_tensors.expected.safetensors exactly (transposed views, slice, f16, i64, 0-d, bf16)", () => {
  const dir = fixture("golden", "tiny-xverse-bin");
  assertEqualSources(join(dir, "odd_tensors.bin"), join(dir, "odd_tensors.expected.safetensors"));
  const src = openTorchBin(join(dir, "odd_tensors.bin"));
  assert.deepEqual(src.names(), ["w_t", "slice", "f16", "i64", "scalar", "bf16_t"]); // pickle (insertion) order
  src.close();
});

test("the same archive in zip64 form (extra fields, 0xFFFFFFFF end record) reads identically", () => {
  assertEqualSources(fixture("io", "odd_tensors.zip64.bin"), fixture("golden", "tiny-xverse-bin", "odd_tensors.expected.safetensors"));
});

/** Expects openTorchBin(path) to throw an XverseError whose message matches and names the file. */
function refuses(path: string, pattern: RegExp, code?: string): void {
  assert.throws(() => openTorchBin(path), (e: unknown) => {
    assert.ok(e instanceof XverseError, `expected XverseError, got ${e}`);
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(path), `message names the file: ${e.message}`);
    if (code) assert.equal(e.code, code);
    return true;
  });
}

test("malicious pickles made by Python's pickle are refused, naming the global, and never executed", () => {
  const cases: Array<[string, string]> = [
    ["evil_os_system.bin", "os.system"],
    ["evil_posix_system.bin", "posix.system"],
    ["evil_builtins_eval.bin", "builtins.eval"],
    ["evil_builtins_exec.bin", "builtins.exec"],
    ["evil_subprocess.bin", "subprocess.check_output"],
    ["evil_numpy_global.bin", "numpy.core.multiarray._reconstruct"],
  ];
  for (const [file, global] of cases) {
    refuses(fixture("io", file), new RegExp(`refused to load global ${global.replace(/\./g, "\\.")}: .*nothing was executed`), "unsafe_pickle");
  }
});

/** A torch-style zip holding one hand-written pickle (and optional storages). */
function torchFile(name: string, pickle: Uint8Array, storages: Array<[string, Uint8Array]> = []): string {
  const path = join(tmp, name);
  writeFileSync(path, storedZip([["archive/data.pkl", pickle], ...storages.map(([k, d]): [string, Uint8Array] => [`archive/data/${k}`, d]), ["archive/version", Buffer.from("3\n")]]));
  return path;
}

const int32 = (v: number) => { const b = Buffer.alloc(5); b.write("J"); b.writeInt32LE(v, 1); return b; };
const tuple = (xs: number[]) => pk("(", ...xs.map(int32), "t");

/** _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, False, OrderedDict()). */
function tensorPk(type: string, key: string, numel: number, offset: number, size: number[], stride: number[]): Uint8Array {
  return pk("ctorch._utils\n_rebuild_tensor_v2\n(",
    pk("(", binunicode("storage"), `ctorch\n${type}\n`, binunicode(key), binunicode("cpu"), int32(numel), "tQ"),
    int32(offset), tuple(size), tuple(stride), "\x89", "ccollections\nOrderedDict\n)R", "tR");
}

test("hand-written pickles: strided views with offsets become contiguous; parameters, nested dicts, OrderedDict state", () => {
  // Storage of 40 int32 values 100..139; a 3-D view with permuted strides and an offset.
  const store = new Int32Array(40).map((_, i) => 100 + i);
  const [off, size, stride] = [3, [2, 3, 4], [1, 12, 2]];
  // 8-byte elements: f64 storage whose values include a NaN with a payload (must survive bit-exactly).
  const f64 = new Float64Array([1.5, -2.25, 3, 4, 5, 6]);
  new DataView(f64.buffer).setUint32(12, 0x7ff00abc, true); // element 1 → NaN with payload
  // OrderedDict() state dict; SETITEM after each pair; a nested plain dict; a non-tensor value; BUILD with torch's _metadata.
  const good = pk("\x80\x02ccollections\nOrderedDict\n)R",
    binunicode("view"), tensorPk("IntStorage", "0", 40, off, size, stride), "s",
    binunicode("param"), "ctorch._utils\n_rebuild_parameter\n(", tensorPk("DoubleStorage", "1", 6, 0, [2, 3], [1, 2]), "\x88ccollections\nOrderedDict\n)RtR", "s",
    binunicode("sub"), "}", binunicode("empty"), tensorPk("IntStorage", "0", 40, 0, [0, 5], [5, 1]), "s", "s",
    binunicode("step"), int32(7), "s",
    binunicode("expand"), tensorPk("IntStorage", "0", 40, 5, [3, 4], [0, 1]), "s",
    "}", binunicode("_metadata"), "}", "sb.");
  const path = torchFile("views.bin", good, [["0", new Uint8Array(store.buffer)], ["1", new Uint8Array(f64.buffer)]]);
  const src = openTorchBin(path);
  assert.deepEqual(src.names(), ["view", "param", "sub.empty", "expand"]);
  // Stride 0 (torch's expand): every row repeats storage[5..8].
  assert.deepEqual([...src.read("expand").data as Int32Array], [105, 106, 107, 108, 105, 106, 107, 108, 105, 106, 107, 108]);
  const v = src.read("view");
  assert.equal(v.dtype, "i32");
  assert.deepEqual(v.shape, size);
  const want: number[] = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) want.push(store[off + i * stride[0] + j * stride[1] + k * stride[2]]);
  assert.deepEqual([...v.data as Int32Array], want);
  // param is the transpose of a 3×2 row-major matrix: element [i][j] = f64[i + 2j].
  const p = src.read("param");
  assert.equal(p.dtype, "f64");
  const bits = new BigUint64Array(f64.buffer); // compare bit patterns: a JS number would canonicalize the NaN
  const pw = new BigUint64Array([bits[0], bits[2], bits[4], bits[1], bits[3], bits[5]]);
  assert.ok(bytes(p).equals(Buffer.from(pw.buffer)), "f64 transpose is bit-exact, NaN payload included");
  assert.deepEqual(src.read("sub.empty").shape, [0, 5]);
  src.close();
});

test("hand-written hostile or corrupt pickles are refused with the opcode or callable named", () => {
  const head = "\x80\x02";
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ["inst", pk(head, "(", binunicode("echo hi"), "ios\nsystem\n."), /opcode INST at byte 15 is refused/],
    ["obj", pk(head, "(]o."), /opcode OBJ at byte 4 is refused/],
    ["ext1", pk(head, "\x82\x01."), /opcode EXT1 at byte 2 is refused/],
    ["persid", pk(head, "Pfoo\n."), /opcode PERSID at byte 2 is refused/],
    ["newobj_ex", pk(head, "\x92."), /opcode NEWOBJ_EX at byte 2 is refused/],
    ["stack_global", pk("\x80\x04\x8c\x02os\x94\x8c\x06system\x94\x93\x94", binunicode("id"), "\x85R."), /refused to load global os\.system/],
    ["unknown_global", pk(head, "ctorch\nload\n)R."), /refused to load global torch\.load/],
    ["call_storage", pk(head, "}", binunicode("w"), "ctorch\nFloatStorage\n)Rs."), /refused to call torch\.FloatStorage/],
    ["build_list", pk(head, "]}b."), /refused BUILD/],
    ["bad_persid", pk(head, binunicode("x"), "Q."), /unexpected persistent id/],
    ["unknown_op", pk(head, "\xff"), /unknown pickle opcode 0xff/],
    ["truncated", pk(head, "}", binunicode("w")).subarray(0, 6), /unexpected end of pickle data/],
    ["no_stop", pk(head, "}"), /unexpected end of pickle data/],
    ["list_top", pk(head, "]."), /holds a list, not a state dict/],
    ["missing_storage", pk(head, "}", binunicode("w"), tensorPk("FloatStorage", "9", 4, 0, [4], [1]), "s."), /no entry archive\/data\/9/],
    ["view_oob", pk(head, "}", binunicode("w"), tensorPk("IntStorage", "0", 40, 30, [4, 4], [4, 1]), "s."), /reaches element 45 of a 40-element storage/],
    ["short_storage", pk(head, "}", binunicode("w"), tensorPk("IntStorage", "0", 99, 0, [4], [1]), "s."), /should hold 396 bytes but its entry has 160/],
    ["neg_binstring", pk(head, "T", Buffer.from([0xfb, 0xff, 0xff, 0xff]), "."), /negative length -5/],
    ["self_dict", pk(head, "}q\x00", binunicode("me"), "h\x00s."), /the state dict contains itself \(at "me\."\)/],
    ["huge_expand", pk(head, "}", binunicode("w"), tensorPk("IntStorage", "0", 40, 0, [65536, 65536, 2], [0, 0, 1]), "s."), /tensor of size \[65536,65536,2\] is too large/],
    ["complex", pk(head, "}", binunicode("w"), tensorPk("ComplexFloatStorage", "0", 4, 0, [4], [1]), "s."), /refused to load global torch\.ComplexFloatStorage/],
  ];
  for (const [name, pickle, pattern] of cases) {
    refuses(torchFile(`${name}.bin`, pickle, [["0", new Uint8Array(160)]]), pattern);
  }
});

test("zip damage is refused: truncated at several points, compressed entries, not a zip", () => {
  const src = readFileSync(fixture("golden", "tiny-xverse-bin", "pytorch_model-00002-of-00002.bin"));
  for (const cut of [100, src.length >> 1, src.length - 30, src.length - 1]) {
    const path = join(tmp, `cut-${cut}.bin`);
    writeFileSync(path, src.subarray(0, cut));
    refuses(path, /no end-of-central-directory record; this is not a valid torch\.save zip file/);
  }
  // The end record survives but the central directory it points at does not.
  const tail = src.subarray(src.length - 22);
  const cutDir = join(tmp, "cut-dir.bin");
  writeFileSync(cutDir, Buffer.concat([src.subarray(0, 2000), tail]));
  refuses(cutDir, /central directory \[\d+, \d+\) lies outside the file/);
  refuses(fixture("io", "compressed.bin"), /zip entry odd_tensors\/data\.pkl is compressed \(method 8\); only stored/, "unsupported");
  const notZip = join(tmp, "legacy.bin");
  writeFileSync(notZip, Buffer.from("\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.", "latin1"));
  refuses(notZip, /not a valid torch\.save zip file/);
});

test("fuzz: randomly corrupted .bin and safetensors files either load or fail with an XverseError, never a crash", () => {
  // Seeded byte mutations concentrated on the pickle / header and the zip directory at the end of the file.
  let seed = 12345;
  const rnd = (n: number) => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) % n; };
  const dir = fixture("golden", "tiny-xverse-bin");
  const targets: Array<[string, (p: string) => { names(): string[]; read(n: string): unknown; close(): void }, number]> = [
    [join(dir, "odd_tensors.bin"), openTorchBin, 700],
    [join(dir, "odd_tensors.expected.safetensors"), openSafetensors, 600],
  ];
  const outcomes = { loaded: 0, refused: 0 };
  for (const [file, open, region] of targets) {
    const orig = readFileSync(file);
    const path = join(tmp, "fuzz.bin");
    for (let it = 0; it < 250; it++) {
      const b = Buffer.from(orig);
      for (let j = 1 + rnd(4); j > 0; j--) {
        const at = rnd(3) === 0 ? b.length - 1 - rnd(400) : rnd(region);
        b[at] = rnd(3) === 0 ? b[at] ^ (1 << rnd(8)) : rnd(256);
      }
      writeFileSync(path, b);
      try {
        const src = open(path);
        for (const n of src.names()) src.read(n);
        src.close();
        outcomes.loaded++;
      } catch (e) {
        if (!(e instanceof XverseError)) assert.fail(`${file} mutation ${it}: ${(e as Error).stack}`);
        outcomes.refused++;
      }
    }
  }
  assert.ok(outcomes.refused > 250, `most mutations are caught: ${JSON.stringify(outcomes)}`);
});
