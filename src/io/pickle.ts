/**
 * A pickle *reader* that never executes anything. It walks the opcode stream and builds plain values; the only
 * points where Python would run code — GLOBAL/STACK_GLOBAL, REDUCE/NEWOBJ, BUILD and persistent ids — are handed
 * to `PickleHooks`, which decide from an allow-list (see torch-bin.ts) and throw for everything else.
 * INST, OBJ, PERSID, NEWOBJ_EX and the extension registry (EXT1/2/4) are refused outright.
 * Opcode values are from CPython's Lib/pickletools.py documentation (protocols 0–5).
 */
import { XverseError } from "../errors.js";
import { pushAll } from "../arrays.js";

/** A module.name reference produced by GLOBAL; the hooks decide what it may do. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string { return `${this.module}.${this.name}`; }
}

/** dict / OrderedDict; keys are kept as JS values (strings and numbers in a state dict). */
export class PyDict {
  readonly map = new Map<unknown, unknown>();
  constructor(readonly ordered = false) {}
}

/** Tuples, lists, sets and frozensets all become JS arrays; a state dict never needs to tell them apart. */
export type PyValue = unknown;

export interface PickleHooks {
  /** Resolve GLOBAL module.name, or throw. */
  global(module: string, name: string, where: string): PyValue;
  /** REDUCE / NEWOBJ: `callable(*args)`, or throw. */
  call(callable: PyValue, args: PyValue[], where: string): PyValue;
  /** BUILD: set `state` on `obj` (returns the object to keep), or throw. */
  build(obj: PyValue, state: PyValue, where: string): PyValue;
  /** BINPERSID: resolve a persistent id (torch: a storage reference), or throw. */
  persistentLoad(pid: PyValue, where: string): PyValue;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const latin1 = new TextDecoder("latin1");

const REFUSED: Record<number, string> = {
  0x69: "INST", 0x6f: "OBJ", 0x50: "PERSID", 0x92: "NEWOBJ_EX", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4",
  0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER", 0x53: "STRING", 0x56: "UNICODE",
};

/** Runs the pickle `data` (named `file` in errors) and returns the value left by STOP. */
export function unpickle(data: Uint8Array, file: string, hooks: PickleHooks): PyValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  let opPos = 0;

  const fail = (msg: string): never => {
    throw new XverseError("bad_checkpoint", `${file}: pickle byte ${opPos}: ${msg}`);
  };
  const need = (n: number): number => {
    if (!(n >= 0)) fail(`negative length ${n}`); // a negative length would move the reader backwards
    if (pos + n > data.length) fail("unexpected end of pickle data (the file is truncated or corrupt)");
    const p = pos;
    pos += n;
    return p;
  };
  const u8 = () => data[need(1)];
  const u16 = () => view.getUint16(need(2), true);
  const u32 = () => view.getUint32(need(4), true);
  const u64 = (): number => {
    const v = view.getBigUint64(need(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is too large`);
    return Number(v);
  };
  const bytes = (n: number) => data.subarray(need(n), pos);
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail("unterminated text argument");
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const text = (n: number): string => {
    try { return utf8.decode(bytes(n)); } catch { return fail("string is not valid UTF-8"); }
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) fail("stack underflow");
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail("stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) fail("no MARK on the stack");
    return stack.splice(m!);
  };
  const memoGet = (k: number): unknown => {
    if (!memo.has(k)) fail(`memo key ${k} was never stored`);
    return memo.get(k);
  };
  const memoPut = (k: number) => { memo.set(k, top()); };
  const where = () => `${file} (pickle byte ${opPos})`;
  const setItems = (d: unknown, kv: unknown[]) => {
    if (!(d instanceof PyDict)) fail("SETITEM(S) on something that is not a dict");
    if (kv.length % 2) fail("SETITEMS with an odd number of items");
    for (let i = 0; i < kv.length; i += 2) (d as PyDict).map.set(kv[i], kv[i + 1]);
  };
  const appendItems = (l: unknown, items: unknown[]) => {
    if (!Array.isArray(l)) fail("APPEND(S)/ADDITEMS on something that is not a list or set");
    pushAll(l as unknown[], items);
  };
  const int = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const longLE = (b: Uint8Array): number | bigint => {
    // Two's-complement little-endian, as LONG1/LONG4 store it.
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b.length > 0 && b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return int(v);
  };

  for (;;) {
    opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO n
      case 0x95: u64(); break; // FRAME (a length hint only)
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x49: { // INT (text); protocol 0 spells booleans 00/01
        const s = line();
        if (s === "00" || s === "01") stack.push(s === "01");
        else if (/^[+-]?\d+$/.test(s)) stack.push(int(BigInt(s)));
        else fail(`bad INT ${JSON.stringify(s)}`);
        break;
      }
      case 0x4c: { // LONG (text, optional trailing L)
        const s = line().replace(/L$/, "");
        if (!/^[+-]?\d+$/.test(s)) fail(`bad LONG ${JSON.stringify(s)}`);
        stack.push(int(BigInt(s)));
        break;
      }
      case 0x4a: stack.push(view.getInt32(need(4), true)); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(longLE(bytes(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = view.getInt32(need(4), true);
        if (n < 0) fail("negative LONG4 length");
        stack.push(longLE(bytes(n)));
        break;
      }
      case 0x46: { // FLOAT (text)
        const s = line();
        const v = Number(s);
        if (Number.isNaN(v) && !/^[+-]?nan$/i.test(s)) fail(`bad FLOAT ${JSON.stringify(s)}`);
        stack.push(v);
        break;
      }
      case 0x47: stack.push(view.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x58: stack.push(text(u32())); break; // BINUNICODE
      case 0x8c: stack.push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(text(u64())); break; // BINUNICODE8
      case 0x54: stack.push(latin1.decode(bytes(view.getInt32(need(4), true)))); break; // BINSTRING (py2 str)
      case 0x55: stack.push(latin1.decode(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: case 0x96: stack.push(bytes(u64()).slice()); break; // BINBYTES8, BYTEARRAY8
      case 0x29: stack.push([]); break; // EMPTY_TUPLE
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(), a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(), b = pop(), a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x61: { const v = pop(); appendItems(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS
      case 0x8f: stack.push([]); break; // EMPTY_SET
      case 0x90: { const items = popMark(); appendItems(top(), items); break; } // ADDITEMS
      case 0x91: stack.push(popMark()); break; // FROZENSET
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(), k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x70: { // PUT (text)
        const s = line();
        if (!/^\d+$/.test(s)) fail(`bad PUT key ${JSON.stringify(s)}`);
        memoPut(Number(s));
        break;
      }
      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size); break; // MEMOIZE
      case 0x67: { // GET (text)
        const s = line();
        if (!/^\d+$/.test(s)) fail(`bad GET key ${JSON.stringify(s)}`);
        stack.push(memoGet(Number(s)));
        break;
      }
      case 0x68: stack.push(memoGet(u8())); break; // BINGET
      case 0x6a: stack.push(memoGet(u32())); break; // LONG_BINGET
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line(), name = line();
        stack.push(hooks.global(module, name, where()));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(hooks.global(module as string, name as string, where()));
        break;
      }
      case 0x52: { // REDUCE: callable(*args)
        const args = pop(), fn = pop();
        if (!Array.isArray(args)) fail("REDUCE arguments are not a tuple");
        stack.push(hooks.call(fn, args as unknown[], where()));
        break;
      }
      case 0x81: { // NEWOBJ: cls.__new__(cls, *args)
        const args = pop(), cls = pop();
        if (!Array.isArray(args)) fail("NEWOBJ arguments are not a tuple");
        stack.push(hooks.call(cls, args as unknown[], where()));
        break;
      }
      case 0x62: { const state = pop(), obj = pop(); stack.push(hooks.build(obj, state, where())); break; } // BUILD
      case 0x51: { const pid = pop(); stack.push(hooks.persistentLoad(pid, where())); break; } // BINPERSID
      default: {
        const name = REFUSED[op];
        if (name) {
          throw new XverseError("unsafe_pickle",
            `${file}: pickle opcode ${name} at byte ${opPos} is refused: it can construct arbitrary objects and torch.save never writes it for tensors (nothing was executed)`);
        }
        fail(`unknown pickle opcode 0x${op.toString(16).padStart(2, "0")} (corrupt file or unsupported pickle protocol)`);
      }
    }
  }
}
