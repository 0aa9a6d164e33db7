/**
 * Writes the seed corpora under fuzz/corpus/<target>/ (committed; rerun with `node dist/scripts/fuzz/seeds.js` after
 * a format change). Seeds are small valid inputs — the fuzzer learns the formats' structure from them — plus the
 * hostile fixtures the loaders already refuse (test/fixtures/io).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors } from "../../src/io/safetensors.js";
import { writeGguf } from "../../src/gguf/writer.js";
import { ZipReader } from "../../src/io/zip.js";
import { storedZip } from "../../test/io/zip-writer.js";

const repo = process.cwd();
const corpus = join(repo, "fuzz", "corpus");
const tmp = mkdtempSync(join(tmpdir(), "xv-seeds-"));
const put = (target: string, name: string, data: Uint8Array | string) => {
  mkdirSync(join(corpus, target), { recursive: true });
  writeFileSync(join(corpus, target, name), data);
};

// safetensors: every dtype family, metadata, an empty tensor
const st = join(tmp, "a.safetensors");
writeSafetensors(st, [
  { name: "w", tensor: { dtype: "f32", shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 0, 1e-3, -7]) } },
  { name: "h", tensor: { dtype: "f16", shape: [3], data: Uint16Array.from([0x3c00, 0xbc00, 0x7bff]) } },
  { name: "b", tensor: { dtype: "bf16", shape: [2], data: Uint16Array.from([0x3f80, 0xc000]) } },
  { name: "q", tensor: { dtype: "i8", shape: [4], data: Int8Array.from([1, -1, 127, -128]) } },
  { name: "e", tensor: { dtype: "f32", shape: [0, 4], data: new Float32Array(0) } },
], { format: "pt", note: "seed" });
put("safetensors", "small", readFileSync(st));
writeSafetensors(st, [{ name: "x", tensor: { dtype: "f32", shape: [1], data: Float32Array.from([42]) } }]);
put("safetensors", "one", readFileSync(st));

// gguf: metadata of every kind a model file has, f32 / f16 / q8_0 tensors
const gg = join(tmp, "a.gguf");
const q8 = new Uint8Array(34); q8[0] = 0x00; q8[1] = 0x3c; for (let i = 2; i < 34; i++) q8[i] = (i * 7) & 255;
writeGguf(gg, {
  metadata: {
    "general.architecture": "llama", "general.name": "seed", "llama.context_length": 64, "llama.embedding_length": 32,
    "llama.block_count": 1, "llama.attention.head_count": 2, "llama.rope.freq_base": 10000.5, "tokenizer.ggml.model": "llama",
    "tokenizer.ggml.tokens": ["<unk>", "<s>", "a", "b"], "tokenizer.ggml.scores": [0, 0, -1.5, -2], "tokenizer.ggml.token_type": [2, 3, 1, 1],
    "general.flag": true,
  },
  types: { "tokenizer.ggml.scores": "ARRAY[FLOAT32]", "tokenizer.ggml.token_type": "ARRAY[INT32]" },
  tensors: [
    { name: "token_embd.weight", type: 0, shape: [2, 4], data: () => new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]).buffer) },
    { name: "output_norm.weight", type: 1, shape: [4], data: () => new Uint8Array(Uint16Array.from([0x3c00, 0x4000, 0x4200, 0x4400]).buffer) },
    { name: "blk.0.attn_q.weight", type: 8, shape: [1, 32], data: () => q8 },
  ],
});
put("gguf", "small", readFileSync(gg));
writeGguf(gg, { metadata: { "general.architecture": "llama" }, tensors: [] });
put("gguf", "empty", readFileSync(gg));

// zip / torch-bin / pickle: the hostile fixtures and a real (odd-dtype) state dict; their pickles
const io = join(repo, "test", "fixtures", "io");
for (const f of readdirSync(io).filter((f) => f.endsWith(".bin"))) {
  const bytes = readFileSync(join(io, f));
  if (bytes.length <= 4096) { put("zip", f, bytes); put("torch-bin", f, bytes); }
  let z: ZipReader;
  try { z = ZipReader.open(join(io, f)); } catch { continue; } // compressed.bin: refused by design
  try {
    const pkl = z.names().find((n) => n.endsWith("data.pkl"));
    if (pkl) { const data = z.read(z.get(pkl)!); if (data.length <= 4096) put("pickle", f.replace(/\.bin$/, ".pkl"), data); }
  } finally {
    z.close();
  }
}
put("zip", "two-entries", storedZip([["archive/data.pkl", Uint8Array.from([0x80, 2, 0x7d, 0x2e])], ["archive/data/0", new Uint8Array(16)]]));
// OrderedDict() filled by SETITEMS: a list with APPENDS, a float, a tuple — the opcodes a state dict uses
const pkl = Buffer.from("\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00aq\x02]q\x03(K\x01M\x00\x01J\xff\xff\xff\xffeX\x01\x00\x00\x00bG?\xf0\x00\x00\x00\x00\x00\x00X\x01\x00\x00\x00c\x88\x89N\x87h\x02\x86u.", "latin1");
put("pickle", "ordered-dict", pkl);
put("torch-bin", "stored", storedZip([["archive/data.pkl", Uint8Array.from([0x80, 2, 0x7d, 0x71, 0, 0x2e])], ["archive/version", Buffer.from("3\n")]]));

// tokenizer.json: the embedded one, and a small byte-level BPE with every component kind
put("tokenizer-json", "stories260K.json", readFileSync(join(repo, "models", "stories260K", "tokenizer.json")));
const bl = {
  version: "1.0",
  added_tokens: [{ id: 0, content: "<|end|>", single_word: false, lstrip: true, rstrip: false, normalized: false, special: true }],
  normalizer: { type: "Sequence", normalizers: [{ type: "NFC" }, { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, { type: "Strip", strip_left: true, strip_right: false }] },
  pre_tokenizer: { type: "Sequence", pretokenizers: [
    { type: "Split", pattern: { Regex: "(?i:'s|'t)|\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+" }, behavior: "Isolated", invert: false },
    { type: "Digits", individual_digits: true }, { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false }] },
  post_processor: { type: "TemplateProcessing", single: [{ SpecialToken: { id: "<|end|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }], special_tokens: { "<|end|>": { id: "<|end|>", ids: [0], tokens: ["<|end|>"] } } },
  decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
  model: { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false,
    vocab: { "<|end|>": 0, "H": 1, "e": 2, "l": 3, "o": 4, "Ġ": 5, "w": 6, "r": 7, "d": 8, "He": 9, "ll": 10, "Hell": 11, "Hello": 12, "Ġw": 13, "or": 14, "Ġwor": 15, "1": 16, "2": 17 },
    merges: [["H", "e"], ["l", "l"], ["He", "ll"], ["Hell", "o"], ["Ġ", "w"], ["o", "r"], "Ġw or"] },
};
put("tokenizer-json", "byte-level.json", JSON.stringify(bl));
const ms = structuredClone(bl) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
ms.pre_tokenizer = { type: "Metaspace", replacement: "▁", prepend_scheme: "first", split: true };
ms.decoder = { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] };
ms.normalizer = { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "NFKC" }, { type: "Lowercase" }] };
ms.model.byte_fallback = true;
ms.model.vocab["<0x41>"] = 18;
ms.post_processor = { type: "ByteLevel", trim_offsets: true };
put("tokenizer-json", "metaspace.json", JSON.stringify(ms));

for (const [i, t] of ["Once upon a time", "  leading and trailing  ", "北京是中国的首都。🤗 e\u0301", "a\tb\nc\r\n\u0000\u00ff", "<s>hi</s><unk>", "1234567890 3.14 -x"].entries()) put("tokenizer-encode", `t${i}`, t);

const templates = [
  "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + eos_token }}{% elif message['role'] == 'system' %}{{ '<|system|>\\n' + message['content'] + eos_token }}{% else %}{{ '<|assistant|>\\n' + message['content'] + eos_token }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}",
  "{{ bos_token }}{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' + m.content | trim + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\\n{% endif %}",
  "{% set loop_messages = messages[1:] if messages[0]['role'] == 'system' else messages %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate') }}{% endif %}{{ '[INST] ' + message['content'] | upper + ' [/INST]' if message['role'] == 'user' else message['content'] }}{% endfor %}",
  "{% macro f(x, y=2) %}{{ x * y }}{% endmacro %}{{ f(3) }}{{ messages | length }}{{ messages[0].content[:5] }}{{ {'a': 1}.items() | list }}{{ range(3) | join(',') }}{{ 'x' ~ 1 }}{% raw %}{{ }}{% endraw %}",
];
templates.forEach((t, i) => put("chat-template", `t${i}`, t));

const calls = [
  "hi <|startofthink|>```JSON\n{\"api_name\": \"hotel_search\", \"parameters\": {\"city\": \"北京\", \"stars\": 4}}\n```<|endofthink|> bye",
  "<|startofthink|>{\"api_name\": \"f\", \"parameters\": {\"a\": [1, 2.5, null, true], \"b\": {\"c\": \"\\u00e9\\n\"}}}<|endofthink|>",
  "<|startofthink|>```JSON\n{\"api_name\": \"x\", \"parameters\": {\"city\": }```<|endofthink|>",
  "plain text with <|start and <|endofthink|> markers",
];
calls.forEach((c, i) => put("tool-call", `c${i}`, c));

const schemas: [object, string][] = [
  [{ type: "object", properties: { name: { type: "string", maxLength: 8 }, age: { type: "integer" }, tags: { type: "array", items: { enum: ["a", "bb"] }, maxItems: 3 } }, required: ["name"], additionalProperties: false }, "{\"name\": \"Al\", \"age\": 3, \"tags\": [\"a\"]}"],
  [{ $defs: { n: { anyOf: [{ type: "null" }, { type: "number" }, { $ref: "#/$defs/n" }] } }, type: "array", items: { $ref: "#/$defs/n" } }, "[1.5, null, -2]"],
  [{ type: "object" }, "{\"a\": {\"b\": [true, false, \"x\\\"y\"]}}"],
  [{ oneOf: [{ const: "yes" }, { type: "boolean" }] }, "\"yes\""],
];
schemas.forEach(([s, v], i) => put("json-prefix", `s${i}`, JSON.stringify(s) + "\n" + v));

const bodies: [number, object][] = [
  [1, { model: "m", messages: [{ role: "system", content: "be brief" }, { role: "user", content: "hi" }], max_tokens: 8, temperature: 0.7, top_p: 0.9, stream: true, stream_options: { include_usage: true }, stop: ["\n", "x"], seed: 3 }],
  [1, { messages: [{ role: "user", content: [{ type: "text", text: "hi" }] }], tools: [{ type: "function", function: { name: "f", description: "d", parameters: { type: "object", properties: { a: { type: "string" } }, required: ["a"] } } }], tool_choice: "auto", logprobs: true, top_logprobs: 2 }],
  [1, { messages: [{ role: "user", content: "x" }], response_format: { type: "json_schema", json_schema: { name: "p", schema: { type: "object" }, strict: true } } }],
  [0, { model: "m", prompt: "Once upon", max_tokens: 5, echo: true, logprobs: 1, repetition_penalty: 1.1, top_k: 5, ignore_eos: true }],
  [0, { prompt: [1, 403, 407], max_tokens: 0, n: 1, best_of: 1, presence_penalty: 0, logit_bias: {} }],
];
bodies.forEach(([ep, b], i) => put("http-request", `b${i}`, Buffer.concat([Buffer.from([ep]), Buffer.from(JSON.stringify(b))])));

rmSync(tmp, { recursive: true, force: true });
for (const t of readdirSync(corpus)) process.stdout.write(`${t}: ${readdirSync(join(corpus, t)).length} seeds\n`);
