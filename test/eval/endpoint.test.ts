// Endpoint mode against `xverse serve` (src/server) on stories260K: multiple-choice scores and generations must
// equal in-process mode, with prompts sent as token ids and as text. A minimal OpenAI-style server written here
// covers what ours does not do: refusing max_tokens 0, and answering without prompt log-probs.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { loadConfig } from "../../src/config.js";
import { tsBackend } from "../../src/backend/ts/index.js";
import { openSafetensors } from "../../src/io/safetensors.js";
import { XverseModel } from "../../src/model/xverse.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { generateText } from "../../src/generate/generate.js";
import { EndpointScorer, apiBase } from "../../src/eval/endpoint.js";
import { startServer } from "../../src/server/index.js";
import { LocalScorer } from "../../src/eval/scorer.js";
import { runEval, type EvalSettings, type McRecord } from "../../src/eval/harness.js";
import { fixture, repoRoot } from "../helpers/peers.js";

const dir = join(repoRoot, "models", "stories260K");
const model = XverseModel.fromSource(loadConfig(dir), openSafetensors(join(dir, "model.safetensors")), { kvType: "f32", backend: tsBackend });
const tok = loadTokenizer(dir);
const cp = (s: string) => [...s].length;

/** OpenAI legacy completions: echo + logprobs over the prompt, greedy generation with stop strings. */
function fakeServer(opts: { refuseZeroMaxTokens?: boolean } = {}): Promise<{ url: string; server: Server; requests: unknown[] }> {
  const requests: unknown[] = [];
  const server = createServer(async (req, res) => {
    const send = (status: number, body: unknown) => { res.writeHead(status, { "content-type": "application/json" }); res.end(JSON.stringify(body)); };
    if (req.method === "GET" && req.url === "/v1/models") return send(200, { object: "list", data: [{ id: "stories260K", object: "model" }] });
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const b = JSON.parse(raw) as { prompt: string | number[]; echo?: boolean; logprobs?: number; max_tokens?: number; stop?: string[] };
    requests.push(b);
    const ids = typeof b.prompt === "string" ? tok.encode(b.prompt).ids : b.prompt;
    const maxTokens = b.max_tokens ?? 16;
    if (!b.echo) {
      const r = await generateText(model, tok, ids, { greedy: true, maxNewTokens: maxTokens, stopStrings: b.stop ?? [] });
      return send(200, { choices: [{ index: 0, text: r.text, finish_reason: r.finishReason === "stop" ? "stop" : "length" }] });
    }
    if (maxTokens === 0 && opts.refuseZeroMaxTokens) return send(400, { error: { message: "max_tokens must be at least 1" } });
    const all = [...ids];
    const V = model.config.vocabSize;
    const logits = model.forward(all, model.newCache(all.length + 1), { logits: "all" });
    if (maxTokens > 0) {
      let best = 0;
      for (let i = 1; i < V; i++) if (logits[(all.length - 1) * V + i]! > logits[(all.length - 1) * V + best]!) best = i;
      all.push(best);
    }
    const tokens: string[] = [], lps: (number | null)[] = [], tops: (Record<string, number> | null)[] = [], offsets: number[] = [];
    const stream = tok.streamDecoder({ skipSpecialTokens: true });
    let offset = 0;
    for (let i = 0; i < all.length; i++) {
      tokens.push(tok.idToToken(all[i]!) ?? "");
      offsets.push(offset);
      offset += cp(stream.push(all[i]!));
      if (i === 0) { lps.push(null); tops.push(null); continue; }
      const row = Array.from(logits.subarray((i - 1) * V, i * V));
      const m = Math.max(...row), lse = m + Math.log(row.reduce((a, x) => a + Math.exp(x - m), 0));
      const arg = row.indexOf(m);
      lps.push(row[all[i]!]! - lse);
      tops.push({ [tok.idToToken(arg) ?? ""]: m - lse, [tokens[i]!]: row[all[i]!]! - lse });
    }
    send(200, { choices: [{ index: 0, text: tok.decode(all, { skipSpecialTokens: true }), logprobs: { tokens, token_logprobs: lps, top_logprobs: tops, text_offset: offsets } }] });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, requests })));
}

const servers: Server[] = [];
after(() => { for (const s of servers) s.close(); });

// Only prompts inside stories260K's 512 positions are compared: longer ones are cut from the left in-process,
// which a server need not do the same way (stories260K spells Chinese in bytes: C-Eval's long items do not fit,
// so it is left out; its scoring path is the same function).
const settings: EvalSettings = { dataDir: fixture("eval"), tasks: ["mmlu", "cmmlu", "gsm8k"], shots: 0, limit: 2, progress: false, gsm8kMaxTokens: 12 };
const fits = (prompt: string) => tok.encode(prompt).ids.length < 500;

test("apiBase adds /v1 once", () => {
  assert.equal(apiBase("http://h:8000"), "http://h:8000/v1");
  assert.equal(apiBase("http://h:8000/v1/"), "http://h:8000/v1");
});

async function compareWithLocal(url: string, label: string): Promise<void> {
  const local = await runEval(new LocalScorer(model, tok, "local"), settings);
  const compared = local.items.filter((it) => fits(it.prompt)).length;
  assert.ok(compared >= 10, `${compared} items fit`);
  for (const tokenizer of [tok, undefined]) {
    const ep = await new EndpointScorer(url, { tokenizer }).init();
    assert.equal(ep.modelName, "stories260K");
    const remote = await runEval(ep, settings);
    assert.equal(remote.items.length, local.items.length);
    for (let i = 0; i < local.items.length; i++) {
      const a = local.items[i]!, b = remote.items[i]!;
      assert.equal(b.prompt, a.prompt);
      if (!fits(a.prompt)) continue;
      if (a.kind === "mc") {
        const bm = b as McRecord;
        for (let k = 0; k < a.scores.length; k++) assert.ok(Math.abs(a.scores[k]! - bm.scores[k]!) < 1e-4, `${label} ${a.task}/${a.subject} choice ${k} (${tokenizer ? "ids" : "text"}): ${a.scores[k]} vs ${bm.scores[k]}`);
        assert.equal(bm.prediction, a.prediction);
        assert.deepEqual(bm.greedy, a.greedy);
      } else {
        assert.deepEqual(b, a);
      }
    }
  }
}

test("endpoint mode against xverse serve gives the in-process scores and generations", async () => {
  const srv = await startServer({ port: 0, concurrency: 1, load: { backend: "ts", kvType: "f32" }, modelId: "stories260K" });
  try {
    await compareWithLocal(srv.url, "xverse serve");
  } finally {
    await srv.close();
  }
});

test("a server that refuses max_tokens 0 is retried with 1 and the generated token is dropped", async () => {
  const { url, server, requests } = await fakeServer({ refuseZeroMaxTokens: true });
  servers.push(server);
  const local = new LocalScorer(model, tok, "local");
  for (const tokenizer of [tok, undefined]) {
    const ep = await new EndpointScorer(url, { tokenizer }).init();
    const a = await local.loglikelihood("Once upon a time, there was a", " girl");
    const b = await ep.loglikelihood("Once upon a time, there was a", " girl");
    assert.ok(Math.abs(a.logprob - b.logprob) < 1e-4, `${a.logprob} vs ${b.logprob}`);
    assert.equal(b.isGreedy, a.isGreedy);
    assert.equal(b.tokens, a.tokens);
  }
  assert.ok(requests.some((r) => (r as { max_tokens: number }).max_tokens === 1));
});

test("a server without prompt log-probs gets a clear error", async () => {
  const server = createServer((_req, res) => { res.writeHead(200, { "content-type": "application/json" }); res.end(JSON.stringify({ choices: [{ text: "x" }] })); });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  servers.push(server);
  const ep = new EndpointScorer(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { model: "m" });
  await assert.rejects(ep.loglikelihood("a", " b"), /no prompt log-probabilities/);
  assert.equal(await ep.generate("p", { maxNewTokens: 4, stop: [] }), "x");
});

test("a server that reports log-probs of the generated token only is refused, not scored at chance", async () => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ choices: [{ text: "x", logprobs: { tokens: [" x"], token_logprobs: [-0.5], top_logprobs: [{ " x": -0.5 }], text_offset: [40] } }] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const tokenizer of [tok, undefined]) {
    await assert.rejects(new EndpointScorer(url, { model: "m", tokenizer }).loglikelihood("Once upon a time", " there"), /echo returned 1 prompt tokens/);
  }
});
