/**
 * PyTorch `torch.save` checkpoints (zip format, PyTorch ≥ 1.6): `<prefix>/data.pkl` is a pickle of the state dict
 * in which each tensor is `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)` and each storage
 * a persistent id ('storage', torch.<Type>Storage, key, location, numel) whose bytes are the zip entry
 * `<prefix>/data/<key>`. The pickle is parsed once on open; each tensor's bytes are read when asked.
 */
import { XverseError } from "../errors.js";
import { DTYPE_BYTES, numel, type DType, type Tensor } from "../tensor.js";
import { PyDict, PyGlobal, unpickle, type PickleHooks } from "./pickle.js";
import { allocTensorData, assertLittleEndianHost, bytesOf } from "./safetensors.js";
import type { TensorInfo, TensorSource } from "./source.js";
import { ZipReader, type ZipEntry } from "./zip.js";

const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  FloatStorage: "f32", HalfStorage: "f16", BFloat16Storage: "bf16", DoubleStorage: "f64", LongStorage: "i64",
  IntStorage: "i32", ShortStorage: "i16", CharStorage: "i8", ByteStorage: "u8", BoolStorage: "bool",
};

/** Every global a tensor state dict may name. Anything else is refused before it could be called. */
const ALLOWED_GLOBALS = new Set<string>([
  "collections.OrderedDict",
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_parameter",
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

/** The most elements a typed array can hold in Node 20 (V8). */
const MAX_TENSOR_ELEMENTS = 2 ** 32;

interface StorageRef { kind: "storage"; dtype: DType; key: string; numel: number; entry: ZipEntry }
interface TensorRef { kind: "tensor"; storage: StorageRef; offset: number; size: number[]; stride: number[] }

const isRef = <K extends string>(v: unknown, kind: K): v is { kind: K } =>
  typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === kind;

function ints(v: unknown, what: string, where: string): number[] {
  if (!Array.isArray(v) || !v.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new XverseError("bad_checkpoint", `${where}: tensor ${what} ${String(v)} is not a tuple of non-negative integers`);
  }
  return v as number[];
}

function torchHooks(zip: ZipReader, prefix: string, file: string): PickleHooks {
  const storages = new Map<string, StorageRef>();
  return {
    global(module, name, where) {
      const q = `${module}.${name}`;
      if (!ALLOWED_GLOBALS.has(q)) {
        throw new XverseError("unsafe_pickle",
          `${where}: refused to load global ${q}: a tensor checkpoint only names torch storages, _rebuild_tensor_v2, _rebuild_parameter and collections.OrderedDict. This file may be malicious; nothing was executed.`);
      }
      return new PyGlobal(module, name);
    },
    call(fn, args, where) {
      const q = fn instanceof PyGlobal ? fn.qualified : typeof fn;
      if (q === "collections.OrderedDict") {
        const d = new PyDict(true);
        if (args.length === 1 && Array.isArray(args[0])) {
          for (const kv of args[0] as unknown[]) if (Array.isArray(kv) && kv.length === 2) d.map.set(kv[0], kv[1]);
        } else if (args.length) {
          throw new XverseError("unsafe_pickle", `${where}: OrderedDict called with unexpected arguments`);
        }
        return d;
      }
      if (q === "torch._utils._rebuild_tensor_v2") {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        const [storage, offset, size, stride] = args;
        if (args.length < 6 || args.length > 7 || !isRef(storage, "storage") || !Number.isSafeInteger(offset) || (offset as number) < 0) {
          throw new XverseError("bad_checkpoint", `${where}: _rebuild_tensor_v2 called with unexpected arguments`);
        }
        const ref: TensorRef = {
          kind: "tensor", storage: storage as StorageRef, offset: offset as number,
          size: ints(size, "size", where), stride: ints(stride, "stride", where),
        };
        if (ref.size.length !== ref.stride.length) throw new XverseError("bad_checkpoint", `${where}: tensor size and stride differ in rank`);
        // Stride 0 (an expanded view) lets a tiny storage claim a huge tensor; refuse what no typed array can hold.
        if (numel(ref.size) > MAX_TENSOR_ELEMENTS) {
          throw new XverseError("bad_checkpoint", `${where}: tensor of size [${ref.size}] is too large to load (over 2^32 elements)`);
        }
        if (numel(ref.size) > 0) {
          let last = ref.offset;
          ref.size.forEach((d, i) => { last += (d - 1) * ref.stride[i]; });
          if (last >= ref.storage.numel) {
            throw new XverseError("bad_checkpoint",
              `${where}: tensor view (offset ${ref.offset}, size [${ref.size}], stride [${ref.stride}]) reaches element ${last} of a ${ref.storage.numel}-element storage`);
          }
        }
        return ref;
      }
      if (q === "torch._utils._rebuild_parameter") {
        // (data, requires_grad, backward_hooks): a Parameter is just its tensor here.
        if (!isRef(args[0], "tensor")) throw new XverseError("bad_checkpoint", `${where}: _rebuild_parameter without a tensor`);
        return args[0];
      }
      throw new XverseError("unsafe_pickle", `${where}: refused to call ${q}: only OrderedDict, _rebuild_tensor_v2 and _rebuild_parameter may be called. Nothing was executed.`);
    },
    build(obj, _state, where) {
      // OrderedDict state dicts carry a `_metadata` attribute (module versions); it is not needed.
      if (obj instanceof PyDict) return obj;
      throw new XverseError("unsafe_pickle", `${where}: refused BUILD (setting object state) on ${obj instanceof PyGlobal ? obj.qualified : typeof obj}. Nothing was executed.`);
    },
    persistentLoad(pid, where) {
      if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== "storage" || !(pid[1] instanceof PyGlobal)) {
        throw new XverseError("unsafe_pickle", `${where}: unexpected persistent id; only ('storage', type, key, location, numel) is understood`);
      }
      const [, type, key, , n] = pid as [string, PyGlobal, unknown, unknown, unknown];
      const dtype = type.module === "torch" ? STORAGE_DTYPES[type.name] : undefined;
      if (!dtype) throw new XverseError("unsupported", `${where}: storage type ${type.qualified} is not supported`);
      if (typeof key !== "string" || !Number.isSafeInteger(n) || (n as number) < 0) {
        throw new XverseError("bad_checkpoint", `${where}: malformed storage reference`);
      }
      const seen = storages.get(key);
      if (seen) return seen;
      const entry = zip.get(`${prefix}data/${key}`);
      if (!entry) throw new XverseError("bad_checkpoint", `${file}: storage ${key} is referenced but the zip has no entry ${prefix}data/${key}; the file is truncated or corrupt`);
      const need = (n as number) * DTYPE_BYTES[dtype];
      if (entry.size < need) {
        throw new XverseError("bad_checkpoint", `${file}: storage ${key} should hold ${need} bytes but its entry has ${entry.size}`);
      }
      const ref: StorageRef = { kind: "storage", dtype, key, numel: n as number, entry };
      storages.set(key, ref);
      return ref;
    },
  };
}

/** Collects name → tensor from the (possibly nested) state dict; nested dicts are joined with ".". */
function collect(value: unknown, prefix: string, out: Map<string, TensorRef>, file: string, path: Set<PyDict> = new Set()): void {
  if (!(value instanceof PyDict)) {
    throw new XverseError("bad_checkpoint", `${file}: the pickle holds a ${Array.isArray(value) ? "list" : typeof value}, not a state dict of tensors`);
  }
  // The memo lets a pickle put a dict inside itself; refuse the cycle instead of recursing forever.
  if (path.has(value)) throw new XverseError("bad_checkpoint", `${file}: the state dict contains itself (at "${prefix}")`);
  path.add(value);
  for (const [k, v] of value.map) {
    const name = prefix + String(k);
    if (isRef(v, "tensor")) out.set(name, v as TensorRef);
    else if (v instanceof PyDict) collect(v, name + ".", out, file, path);
    // Other values (ints, strings, None: e.g. training step counters) are not tensors; ignore them.
  }
  path.delete(value);
}

function isContiguous(size: number[], stride: number[]): boolean {
  let expect = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    if (size[i] !== 1 && stride[i] !== expect) return false;
    expect *= size[i];
  }
  return true;
}

/** Copies a strided view of `src` (element units, width 1/2/4/8 bytes) into a contiguous `dst`. */
function gather(src: Uint8Array, dst: Uint8Array, width: number, base: number, size: number[], stride: number[]): void {
  // Copy in 32/16/8-bit lanes (8-byte elements as two 32-bit lanes), never through float registers, so NaN payloads survive.
  const lanes = width === 8 ? 2 : 1;
  const lw = width === 8 ? 4 : width;
  const mk = (b: Uint8Array) => lw === 4 ? new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4)
    : lw === 2 ? new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2) : b;
  const s = mk(src), d = mk(dst);
  const rank = size.length;
  const inner = rank ? size[rank - 1] : 1;
  const innerStride = rank ? stride[rank - 1] : 1;
  const rows = inner ? numel(size) / inner : 0;
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    let at = base;
    for (let i = 0; i < rank - 1; i++) at += idx[i] * stride[i];
    for (let j = 0; j < inner; j++) {
      const e = (at + j * innerStride) * lanes;
      for (let l = 0; l < lanes; l++) d[o++] = s[e + l];
    }
    for (let i = rank - 2; i >= 0; i--) { // odometer over the outer dims
      if (++idx[i] < size[i]) break;
      idx[i] = 0;
    }
  }
}

/** Opens a torch.save zip checkpoint: refuses anything that is not a plain tensor state dict, reads tensors lazily. */
export function openTorchBin(path: string): TensorSource {
  assertLittleEndianHost();
  const zip = ZipReader.open(path);
  let tensors: Map<string, TensorRef>;
  try {
    const pkls = zip.names().filter((n) => /^[^/]*\/data\.pkl$/.test(n) || n === "data.pkl");
    if (pkls.length !== 1) {
      throw new XverseError("bad_checkpoint", `${path}: expected exactly one <archive>/data.pkl in the zip, found ${pkls.length}; this is not a torch.save checkpoint`);
    }
    const prefix = pkls[0].slice(0, -"data.pkl".length);
    const bo = zip.get(`${prefix}byteorder`);
    if (bo && new TextDecoder().decode(zip.read(bo)) !== "little") {
      throw new XverseError("unsupported", `${path}: big-endian torch checkpoints are not supported`);
    }
    const pkl = zip.read(zip.get(pkls[0])!);
    tensors = new Map();
    collect(unpickle(pkl, path, torchHooks(zip, prefix, path)), "", tensors, path);
  } catch (e) {
    zip.close();
    throw e;
  }
  let open = true;
  const get = (name: string): TensorRef => {
    const t = tensors.get(name);
    if (!t) throw new XverseError("missing_tensor", `${path}: no tensor named "${name}"`);
    return t;
  };
  return {
    names: () => [...tensors.keys()],
    has: (name) => tensors.has(name),
    info: (name): TensorInfo => {
      const t = get(name);
      return { name, dtype: t.storage.dtype, shape: t.size.slice(), file: path };
    },
    read: (name): Tensor => {
      const t = get(name);
      if (!open) throw new XverseError("closed", `${path}: read("${name}") after close()`);
      const { dtype, entry } = t.storage;
      const width = DTYPE_BYTES[dtype];
      const n = numel(t.size);
      const data = allocTensorData(dtype, n, `${path}: tensor "${name}"`);
      if (n === 0) return { dtype, shape: t.size.slice(), data };
      if (isContiguous(t.size, t.stride)) {
        zip.read(entry, t.offset * width, n * width, bytesOf(data));
      } else {
        // Read the span the view touches once (aligned fresh buffer), then gather.
        let last = t.offset;
        t.size.forEach((d, i) => { last += (d - 1) * t.stride[i]; });
        const span = new Uint8Array(new ArrayBuffer((last - t.offset + 1) * width));
        zip.read(entry, t.offset * width, span.length, span);
        gather(span, bytesOf(data), width, 0, t.size, t.stride);
      }
      return { dtype, shape: t.size.slice(), data };
    },
    close: () => {
      if (open) { open = false; zip.close(); }
    },
  };
}
