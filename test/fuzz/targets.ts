/**
 * Fuzz targets: each takes raw bytes from the fuzzer and drives one parser that reads untrusted input (files from
 * the internet, HTTP bodies, model output). The invariant every target shares is checked by `runTarget`: the only
 * exceptions that may escape are XverseError (a file or value the user must fix) and ApiError with a 4xx status;
 * anything else (TypeError, RangeError, a 500) is a finding. Time and allocation bounds are the engine's job.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { XverseError } from "../../src/errors.js";
import { parseGgufBytes, readGgufTensorBytes } from "../../src/io/gguf.js";
import { unpickle, PyDict, PyGlobal, type PickleHooks } from "../../src/io/pickle.js";
import { openSafetensors } from "../../src/io/safetensors.js";
import { openTorchBin } from "../../src/io/torch-bin.js";
import { ZipReader } from "../../src/io/zip.js";
import { tokenizerFromJson } from "../../src/tokenizer/load.js";
import type { Tokenizer } from "../../src/tokenizer/types.js";
import { renderTemplate } from "../../src/chat/template.js";
import { parseToolCall, ToolCallStream } from "../../src/chat/parse.js";
import { CallRecognizer, compileSchema, documentGrammar } from "../../src/chat/json-prefix.js";
import { parseChatRequest, parseCompletionRequest } from "../../src/server/schema.js";
import { ApiError } from "../../src/server/errors.js";
import { readFileSync } from "node:fs";

export type Target = (data: Uint8Array) => void;

/** Longest input the fuzzer makes per target (its seeds may be longer: whole small files). */
export const MAX_LEN: Record<string, number> = { "tokenizer-json": 32768, "safetensors": 8192, "gguf": 8192, "torch-bin": 8192 };

const utf8 = new TextDecoder("utf-8"); // lenient: U+FFFD for bad bytes, as JSON.parse of a body would see them

/** Files for the path-based readers live in one private temp dir (tmpfs when there is one). */
let dir: string | null = null;
function tempFile(name: string, data: Uint8Array): string {
  if (!dir) {
    const base = process.platform === "linux" ? "/dev/shm" : tmpdir();
    try { dir = mkdtempSync(join(base, "xv-fuzz-")); } catch { dir = mkdtempSync(join(tmpdir(), "xv-fuzz-")); }
    const d = dir;
    process.once("exit", () => rmSync(d, { recursive: true, force: true }));
  }
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

/** Reads every tensor a source lists: the data bounds are checked, not only the header. Caps what it reads. */
function readAll(src: { names(): string[]; read(name: string): unknown; close?(): void }): void {
  try {
    let n = 0;
    for (const name of src.names()) {
      if (n++ > 64) break;
      src.read(name);
    }
  } finally {
    src.close?.();
  }
}

// The hooks a state dict needs, as torch-bin uses them in spirit: a small allow-list, everything else refused.
const pickleHooks: PickleHooks = {
  global(module, name, where) {
    if (module === "collections" && name === "OrderedDict") return new PyGlobal(module, name);
    if (module === "torch._utils" && name === "_rebuild_tensor_v2") return new PyGlobal(module, name);
    throw new XverseError("bad_checkpoint", `${where}: global ${module}.${name} is not allowed`);
  },
  call(callable, args, where) {
    if (callable instanceof PyGlobal && callable.name === "OrderedDict") return new PyDict(true);
    if (callable instanceof PyGlobal) return { rebuilt: args.length };
    throw new XverseError("bad_checkpoint", `${where}: call of a non-global`);
  },
  build(obj) { return obj; },
  persistentLoad(pid, where) {
    if (!Array.isArray(pid)) throw new XverseError("bad_checkpoint", `${where}: persistent id is not a tuple`);
    return { storage: pid.length };
  },
};

let stories: Tokenizer | null = null;
function storiesTokenizer(): Tokenizer {
  stories ??= tokenizerFromJson(readFileSync(join(repoDir(), "models", "stories260K", "tokenizer.json"), "utf8"));
  return stories;
}

/** The repository root: targets run from dist/test/fuzz or from the instrumented copy, both under it. */
export function repoDir(): string {
  return process.env.XVERSE_REPO ?? process.cwd();
}

const MESSAGES = [
  { role: "system" as const, content: "You are helpful." },
  { role: "user" as const, content: "Hi <b>there</b> {{ x }}" },
  { role: "assistant" as const, content: "Hello!" },
  { role: "user" as const, content: "What is 2+2?" },
];

export const TARGETS: Record<string, Target> = {
  "safetensors": (data) => readAll(openSafetensors(tempFile("x.safetensors", data), { mmap: false })),

  "gguf": (data) => {
    const f = parseGgufBytes(data, "fuzz.gguf");
    let n = 0;
    for (const t of f.tensors) {
      if (n++ > 64) break;
      readGgufTensorBytes(f, t);
    }
  },

  "pickle": (data) => { unpickle(data, "fuzz.pkl", pickleHooks); },

  "zip": (data) => {
    const z = ZipReader.open(tempFile("x.zip", data));
    try {
      let n = 0;
      for (const name of z.names()) {
        if (n++ > 64) break;
        const e = z.get(name)!;
        z.read(e, 0, Math.min(e.size, 1 << 16));
      }
    } finally {
      z.close();
    }
  },

  "torch-bin": (data) => readAll(openTorchBin(tempFile("pytorch_model.bin", data))),

  "tokenizer-json": (data) => {
    // the file is the input; a fixed text then goes through every stage it built
    const tok = tokenizerFromJson(utf8.decode(data));
    const enc = tok.encode("Hello, world! 北京 123 <s> \u00e9\u0301  x\n\ty", { addSpecialTokens: true });
    tok.decode(enc.ids, { skipSpecialTokens: false });
    const d = tok.streamDecoder({ skipSpecialTokens: true });
    for (const id of enc.ids) d.push(id);
    d.flush();
  },

  "tokenizer-encode": (data) => {
    const tok = storiesTokenizer();
    const text = utf8.decode(data);
    const enc = tok.encode(text, { addSpecialTokens: true });
    for (const id of enc.ids) if (!(id >= 0 && id < tok.vocabSize)) throw new Error(`id ${id} outside the vocabulary`);
    for (const [a, b] of enc.offsets) if (!(a >= 0 && a <= b && b <= text.length)) throw new Error(`offset [${a}, ${b}] outside the text`);
    // the stories tokenizer has byte fallback and a reversible normalizer (prepend ▁, spaces → ▁), so decoding
    // gives the text back — unless the text spells ▁ itself or a special token (skipped when decoding)
    if (/▁|<s>|<\/s>|<unk>/.test(text)) return;
    const back = tok.decode(enc.ids, { skipSpecialTokens: true });
    if (back !== text) throw new Error(`decode(encode(x)) != x: ${JSON.stringify(text.slice(0, 40))} → ${JSON.stringify(back.slice(0, 40))}`);
  },

  "chat-template": (data) => {
    renderTemplate(MESSAGES, { template: utf8.decode(data), bosToken: "<s>", eosToken: "</s>" });
  },

  "tool-call": (data) => {
    const text = utf8.decode(data);
    const whole = parseToolCall(text);
    // streaming in uneven pieces must end where the one-shot parse does
    const s = new ToolCallStream();
    let shown = "";
    for (let i = 0; i < text.length; i += 1 + (i % 7)) shown += s.push(text.slice(i, i + 1 + (i % 7))).text;
    const end = s.end();
    void whole; void shown; void end;
  },

  "json-prefix": (data) => {
    // first line: a JSON schema; the rest: text fed to the recognizer for that schema
    const text = utf8.decode(data);
    const nl = text.indexOf("\n");
    let schema: unknown;
    try { schema = JSON.parse(nl < 0 ? text : text.slice(0, nl)); } catch { return; }
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return;
    const r = CallRecognizer.start(documentGrammar(compileSchema(schema as Record<string, unknown>)));
    r.feedText(nl < 0 ? "" : text.slice(nl + 1));
  },

  "http-request": (data) => {
    // first byte picks the endpoint; the rest is the body as the server would parse it
    let body: unknown;
    try { body = JSON.parse(utf8.decode(data.subarray(1))); } catch { return; }
    if (data.length && data[0] & 1) parseChatRequest(body);
    else parseCompletionRequest(body);
  },
};

/** Runs one input: returns normally, or rethrows what must never escape (a finding). */
export function runTarget(name: string, data: Uint8Array): void {
  const t = TARGETS[name];
  if (!t) throw new Error(`unknown fuzz target ${name}; targets: ${Object.keys(TARGETS).join(", ")}`);
  try {
    t(data);
  } catch (e) {
    if (e instanceof XverseError) return;
    if (e instanceof ApiError && e.status >= 400 && e.status < 500) return;
    throw e;
  }
}
