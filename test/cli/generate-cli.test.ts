// The real binary on the embedded model, as a user runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generateText } from "../../src/generate/generate.js";
import { loadModel } from "../../src/model/load.js";
import { fixture, repoRoot } from "../helpers/peers.js";

const bin = join(repoRoot, "bin", "xverse.js");
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000 });
const golden = JSON.parse(readFileSync(fixture("golden", "stories260K", "golden.json"), "utf8"));

test("xverse generate --greedy prints exactly the golden continuation on stdout", () => {
  const r = run("generate", "--greedy", "--max-new-tokens", "40", "Once upon a time");
  assert.equal(r.status, 0, r.stderr);
  const full: string = golden.generate.once.text;
  assert.ok(full.startsWith("Once upon a time" + r.stdout), `stdout: ${JSON.stringify(r.stdout)}`);
  assert.ok(r.stdout.startsWith(", there was a little girl named Lily."));
  assert.match(r.stderr, /tok\/s/, "speed goes to stderr");
});

test("--echo prints the prompt first", () => {
  const r = run("generate", "--echo", "--greedy", "--max-new-tokens", "12", "Once upon a time");
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.startsWith("Once upon a time, there was a little girl named Lily."), r.stdout);
});

test("--echo \"Zoo\" prints decode(prompt + generation): the continuation keeps its leading space", async () => {
  const r = run("generate", "--echo", "--greedy", "--max-new-tokens", "20", "--quiet", "Zoo");
  assert.equal(r.status, 0, r.stderr);
  // the same greedy generation in process, decoded as a whole
  const { model, tokenizer: tok, generationConfig: gc } = await loadModel(undefined, { onWarning: () => {} });
  const prompt = tok.encode("Zoo").ids;
  const g = await generateText(model, tok, prompt, { greedy: true, maxNewTokens: 20, eosTokenIds: gc.eosTokenIds.length ? gc.eosTokenIds : undefined });
  const all = tok.decode([...prompt, ...g.ids], { skipSpecialTokens: true });
  assert.ok(all.startsWith("Zoo was"), all);
  assert.equal(r.stdout, all + "\n");
  // without --echo: exactly the continuation
  const plain = run("generate", "--greedy", "--max-new-tokens", "20", "--quiet", "Zoo");
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal("Zoo" + plain.stdout, all);
});

test("seeded sampling is reproducible from the command line", () => {
  const a = run("generate", "--seed", "42", "--temperature", "0.8", "--max-new-tokens", "30", "--quiet", "Once upon a time");
  const b = run("generate", "--seed", "42", "--temperature", "0.8", "--max-new-tokens", "30", "--quiet", "Once upon a time");
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.doesNotMatch(a.stderr, /tok\/s/, "--quiet prints no statistics");
});

test("user errors are one clear line, no stack", () => {
  for (const [args, re] of [
    [["generate"], /exactly one PROMPT/],
    [["generate", "--max-new-tokens", "abc", "x"], /--max-new-tokens expects an integer/],
    [["generate", "--model", "/nonexistent/dir", "x"], /does not exist/],
    [["generate", "--rope-scaling", "cubic:2", "x"], /--rope-scaling must be/],
    [["nosuchcommand"], /unknown command/],
  ] as [string[], RegExp][]) {
    const r = run(...args);
    assert.notEqual(r.status, 0, args.join(" "));
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
});

test("--help documents every flag", () => {
  const r = run("generate", "--help");
  assert.equal(r.status, 0);
  for (const f of ["--max-new-tokens", "--greedy", "--temperature", "--top-k", "--top-p", "--repetition-penalty", "--seed", "--echo", "--model", "--rope-theta", "--rope-scaling"]) {
    assert.ok(r.stdout.includes(f), f);
  }
});

test("KV flags: bad values get one clear line naming the flag, and the KV line states bytes per token", () => {
  const bad: [string[], RegExp][] = [
    [["--kv-type", "f8"], /--kv-type: 'f8' is not a KV cache type \(use f32, f16, q8_0\)/],
    [["--kv-budget", "lots"], /--kv-budget: "lots" is not a size/],
    [["--kv-budget", "0"], /--kv-budget: "0" must be at least 1 byte/],
    [["--ctx-size", "0"], /--ctx-size must be ≥ 1/],
    [["--ctx-size", "99999999999"], /--ctx-size/],
    [["--ctx-size", "4"], /the prompt has 5 tokens, more than the context size of 4/],
  ];
  for (const [flags, re] of bad) {
    const r = run("generate", ...flags, "--max-new-tokens", "2", "Once upon a time");
    assert.equal(r.status, 1, `${flags.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
  // stories260K: 5 layers × 4 kv heads × 8 dims × 2 (K, V) × 2 bytes = 640 B per token at f16; 1.0625 B at q8_0 → 400
  for (const [type, bytes] of [["f16", "640 B"], ["q8_0", "400 B"], ["f32", "1.3 KB"]]) {
    const r = run("generate", "--kv-type", type, "--greedy", "--max-new-tokens", "8", "Once upon a time");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`KV cache ${type}: ${bytes} per token, context 512 tokens`));
    assert.ok(r.stdout.startsWith(", there was a little girl"), `${type}: ${r.stdout}`);
  }
  const chat = spawnSync(process.execPath, [bin, "chat", "--kv-budget", "1K"], { input: "hi\n", encoding: "utf8", timeout: 60_000 });
  assert.equal(chat.status, 1);
  assert.match(chat.stderr, /KV cache budget 1\.0 KB is smaller than one block/);
});

test("--json-schema FILE: stdout is one JSON value the schema accepts (ajv), over seeds; a bad schema names the file and keyword", async () => {
  const { Ajv } = await import("ajv");
  const { mkdtempSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const dir = mkdtempSync(join(tmpdir(), "xverse-json-"));
  const schema = {
    type: "object",
    properties: { name: { type: "string", maxLength: 10 }, age: { type: "integer" }, pets: { type: "array", items: { enum: ["cat", "dog"] }, maxItems: 2 } },
    required: ["name", "age", "pets"],
    additionalProperties: false,
  };
  const file = join(dir, "person.json");
  writeFileSync(file, JSON.stringify(schema));
  const validate = new Ajv().compile(schema);
  for (const seed of ["1", "2", "3"]) {
    const r = run("generate", "--json-schema", file, "--seed", seed, "--temperature", "1", "--max-new-tokens", "60", "--quiet", "Lily");
    assert.equal(r.status, 0, r.stderr);
    assert.ok(validate(JSON.parse(r.stdout)), r.stdout);
  }
  const obj = run("generate", "--json", "--greedy", "--max-new-tokens", "30", "--quiet", "x");
  assert.equal(obj.status, 0, obj.stderr);
  assert.equal(typeof JSON.parse(obj.stdout), "object");
  const bad = join(dir, "bad.json");
  writeFileSync(bad, JSON.stringify({ type: "object", properties: { a: { type: "string", pattern: "^x" } } }));
  const b = run("generate", "--json-schema", bad, "x");
  assert.equal(b.status, 1);
  assert.match(b.stderr, /bad\.json/);
  assert.match(b.stderr, /#\/properties\/a: "pattern" is not supported/);
  assert.doesNotMatch(b.stderr, /\n\s+at /, "no stack trace");
  const missing = run("generate", "--json-schema", join(dir, "nope.json"), "x");
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /cannot read .*nope\.json/);
});
