/**
 * Regression tests for the defects issue 17's adversarial pass found: each asserts the right value against an
 * independent oracle (a plain loop, greedy decoding, the tokenizer without its post-processor), not just "no throw".
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { maxOf, minOf, pushAll } from "../../src/arrays.js";
import type { ChatMessage } from "../../src/chat/types.js";
import { XverseError } from "../../src/errors.js";
import { generate } from "../../src/generate/generate.js";
import { applyChain, argmax, processorChain, sample, softmax } from "../../src/generate/processors.js";
import { Rng } from "../../src/generate/rng.js";
import { unpickle } from "../../src/io/pickle.js";
import { loadModel } from "../../src/model/load.js";
import { parseCompletionRequest, parseChatRequest } from "../../src/server/schema.js";
import { ApiError } from "../../src/server/errors.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { repoRoot } from "../helpers/peers.js";

const N = 300_000; // past V8's argument limit for f(...a) (~120k on x64 with the default stack)

test("pushAll / minOf / maxOf take arrays past the call-argument limit", () => {
  const src = Array.from({ length: N }, (_, i) => (i * 7919) % 100_003);
  assert.throws(() => [].push(...(src as never[])), RangeError, "the spread form still overflows (else this test proves nothing)");
  const dst = [-1];
  pushAll(dst, src);
  assert.equal(dst.length, N + 1);
  assert.equal(dst[N], src[N - 1]);
  let lo = Infinity, hi = -Infinity;
  for (const v of src) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  assert.equal(minOf(src), lo);
  assert.equal(maxOf(src), hi);
  assert.equal(minOf([], 5), 5);
  assert.equal(maxOf([2, 9], 1), 9);
});

test("TemplateProcessing on a 200 KB text: BOS + the plain encoding (no stack overflow)", () => {
  const tok = loadTokenizer(join(repoRoot, "models", "stories260K"));
  const text = "Once upon a time there was a cat. ".repeat(6000); // 204 KB, ~60k tokens
  const plain = tok.encode(text, { addSpecialTokens: false }).ids;
  const full = tok.encode(text, { addSpecialTokens: true });
  assert.ok(plain.length > 50_000, `${plain.length} tokens`);
  assert.equal(full.ids.length, plain.length + 1);
  assert.equal(full.ids[0], 1);
  assert.deepEqual(full.ids.slice(1), plain);
  assert.equal(tok.decode(full.ids, { skipSpecialTokens: true }), text.trimEnd() === text ? text : tok.decode(plain, { skipSpecialTokens: true }));
});

test("pickle: APPENDS with 300k items builds the list (no stack overflow)", () => {
  // PROTO 2, EMPTY_LIST, MARK, N × BININT1 (i mod 256), APPENDS, STOP
  const bytes = new Uint8Array(2 + 1 + 1 + 2 * N + 2);
  let p = 0;
  bytes[p++] = 0x80; bytes[p++] = 2;
  bytes[p++] = 0x5d; // ]
  bytes[p++] = 0x28; // (
  for (let i = 0; i < N; i++) { bytes[p++] = 0x4b; bytes[p++] = i & 255; } // K
  bytes[p++] = 0x65; // e
  bytes[p++] = 0x2e; // .
  const refuse = () => { throw new XverseError("bad_checkpoint", "no globals here"); };
  const v = unpickle(bytes, "big-list.pkl", { global: refuse, call: refuse, build: refuse, persistentLoad: refuse }) as number[];
  assert.equal(v.length, N);
  for (const i of [0, 1, 255, 256, N - 1]) assert.equal(v[i], i & 255);
});

test("temperature 1e-300: the exact t → 0 limit (greedy among the tied best), no NaN", () => {
  const logits = Float32Array.from([1, 3, 3, 2, -50, 2.9999]);
  for (const t of [1e-300, 5e-324, 1e-45, 1e-8]) {
    const row = applyChain(processorChain({ temperature: t, sample: true }), [], Float32Array.from(logits));
    const p = softmax(row);
    assert.ok(p.every((x) => Number.isFinite(x)), `t=${t}: ${Array.from(p)}`);
    // oracle: the limit puts 1/2 on each of the two tied maxima (ids 1 and 2), 0 elsewhere (t=1e-8 still does:
    // 1e-4 / 1e-8 = 1e4 below the max)
    assert.deepEqual(Array.from(p), [0, 0.5, 0.5, 0, 0, 0], `t=${t}`);
    const rng = new Rng(3);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(sample(row, rng));
    assert.deepEqual([...seen].sort(), [1, 2]);
  }
  // a moderate temperature is still HF's logits / t (softmax is shift-invariant)
  const t = 0.7, row = applyChain(processorChain({ temperature: t, sample: true }), [], Float32Array.from(logits));
  const want = softmax(Float32Array.from(logits, (x) => x / t));
  softmax(row).forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-7, `${i}: ${x} vs ${want[i]}`));
  // +Infinity logits (a repetition penalty near 0): uniform over them, never NaN
  const inf = Float32Array.from([0, Infinity, 1, Infinity]);
  const r2 = new Rng(1), got = new Set<number>();
  for (let i = 0; i < 100; i++) got.add(sample(inf, r2));
  assert.deepEqual([...got].sort(), [1, 3]);
  assert.equal(argmax(inf), 1);
});

for (const backend of ["ts", "native"] as const) {
  test(`generate with temperature 1e-300 gives the greedy tokens (${backend} backend)`, async (t) => {
    let loaded;
    try {
      loaded = await loadModel(undefined, { backend, onWarning: () => {} });
    } catch (e) {
      if (backend === "native") { t.skip(`native backend unavailable: ${(e as Error).message}`); return; }
      throw e;
    }
    const { model, tokenizer } = loaded;
    const prompt = tokenizer.encode("Once upon a time", { addSpecialTokens: true }).ids;
    const run = async (o: object) => { const ids: number[] = []; for await (const x of generate(model, tokenizer, prompt, { maxNewTokens: 24, ...o })) ids.push(x.id); return ids; };
    const greedy = await run({ greedy: true });
    assert.deepEqual(await run({ temperature: 1e-300, seed: 1 }), greedy);
    assert.deepEqual(await run({ temperature: 1e-300, topP: 0.9, topK: 5, seed: 2 }), greedy);
  });
}

test("structurally wrong tokenizer.json fields: XverseError naming the file and the field", () => {
  const base = JSON.parse(readFileSync(join(repoRoot, "models", "stories260K", "tokenizer.json"), "utf8"));
  const dir = mkdtempSync(join(tmpdir(), "xv-badtok-"));
  try {
    const cases: [string, (j: any) => void, RegExp][] = [
      ["pretokenizers not an array", (j) => { j.pre_tokenizer = { type: "Sequence", pretokenizers: 5 }; }, /pre_tokenizer\.pretokenizers must be an array/],
      ["decoders not an array", (j) => { j.decoder.decoders = "Fuse"; }, /decoder\.decoders must be an array/],
      ["a decoder step null", (j) => { j.decoder.decoders[1] = null; }, /decoder\.decoders\[1\] must be an object/],
      ["normalizers an object", (j) => { j.normalizer.normalizers = {}; }, /normalizer\.normalizers must be an array/],
      ["single not an array", (j) => { j.post_processor.single = { SpecialToken: { id: "<s>" } }; }, /post_processor\.single must be an array/],
      ["single item a string", (j) => { j.post_processor.single[0] = "<s>"; }, /post_processor\.single\[0\] must be an object/],
      ["SpecialToken id a number", (j) => { j.post_processor.single[0].SpecialToken.id = 1; }, /post_processor\.single\[0\]\.SpecialToken\.id must be a string/],
      ["added_tokens[i] null", (j) => { j.added_tokens[1] = null; }, /added_tokens\[1\] must be an object/],
      ["added_tokens[i].content a number", (j) => { j.added_tokens[0].content = 7; }, /added_tokens\[0\]\.content must be a string/],
      ["a special token not an object", (j) => { j.post_processor.special_tokens["<s>"] = 1; }, /special_tokens\["<s>"\] must be an object/],
      ["special token ids not an array", (j) => { j.post_processor.special_tokens["<s>"].ids = "1"; }, /special_tokens\["<s>"\]\.ids must be an array of token ids/],
      ["vocab id a string", (j) => { j.model.vocab["<s>"] = "1"; }, /model\.vocab\["<s>"\] must be a token id/],
      ["merges an object", (j) => { j.model.merges = {}; }, /model\.merges must be an array/],
      ["Replace pattern a string", (j) => { j.normalizer.normalizers[1].pattern = " "; }, /normalizer\.normalizers\[1\]\.pattern must be an object/],
      ["model null", (j) => { j.model = null; }, /no "model" object/],
    ];
    for (const [what, mutate, msg] of cases) {
      const j = structuredClone(base);
      mutate(j);
      const file = join(dir, "tokenizer.json");
      writeFileSync(file, JSON.stringify(j));
      assert.throws(() => loadTokenizer(file), (e: unknown) => {
        assert.ok(e instanceof XverseError, `${what}: ${(e as Error)?.stack}`);
        assert.match(e.message, msg, what);
        assert.ok(e.message.includes(file), `${what}: names the file: ${e.message}`);
        return true;
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("max_tokens: 1e400 says it is not finite (not 'must be a number, got a number')", () => {
  const body = JSON.parse('{"prompt": "hi", "max_tokens": 1e400}');
  assert.equal(body.max_tokens, Infinity);
  assert.throws(() => parseCompletionRequest(body), (e: unknown) => {
    assert.ok(e instanceof ApiError && e.status === 400);
    assert.equal(e.param, "max_tokens");
    assert.match(e.message, /max_tokens must be a finite number, got Infinity/);
    return true;
  });
  const chat = JSON.parse('{"messages": [{"role": "user", "content": "hi"}], "temperature": -1e999}');
  assert.throws(() => parseChatRequest(chat), /temperature must be a finite number, got -Infinity/);
});

test("chat template truncation: as dropping one message at a time would, in log2(n) renders", async () => {
  const { buildFromTemplate } = await import("../../src/chat/template.js");
  const tok = loadTokenizer(join(repoRoot, "models", "stories260K"));
  const template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";
  const msgs: ChatMessage[] = [{ role: "system", content: "Be kind." }];
  for (let i = 0; i < 3000; i++) msgs.push({ role: i % 2 ? "assistant" : "user", content: `message ${i} about a cat` });
  // oracle: the linear scan the builder used to do, on a short history (the long one would take seconds)
  const linear = (ms: typeof msgs, budget: number) => {
    for (let drop = 0; ; drop++) {
      const text = renderLinear(ms.slice(0, 1).concat(ms.slice(1 + drop)));
      const ids = tok.encode(text, { addSpecialTokens: false }).ids;
      if (ids.length <= budget) return { ids, drop };
    }
  };
  const renderLinear = (ms: typeof msgs) => ms.map((m) => `<${m.role}>${m.content}\n`).join("") + "<assistant>";
  for (const budget of [60, 200, 333]) {
    const short = msgs.slice(0, 40);
    const got = buildFromTemplate(tok, short, { template, budget });
    const want = linear(short, budget);
    assert.deepEqual(got.ids, want.ids, `budget ${budget}`);
    assert.equal(got.truncated, want.drop > 0);
  }
  const t0 = performance.now();
  const big = buildFromTemplate(tok, msgs, { template, budget: 256 });
  const ms = performance.now() - t0;
  assert.ok(big.ids.length <= 256 && big.ids.length > 200, `${big.ids.length} tokens`);
  assert.ok(ms < 1500, `3,000 messages took ${ms.toFixed(0)} ms`); // one at a time: ~3,000 renders of ~80 KB
  assert.throws(() => buildFromTemplate(tok, [{ role: "user", content: "x ".repeat(400) }], { template, budget: 50 }), /newest message alone/);
});
