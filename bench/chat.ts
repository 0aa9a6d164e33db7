/**
 * `npm run bench:chat`: our engine vs llama.cpp (node-llama-cpp 3.21.1) on the KV-cache workloads, both reading
 * the same GGUF file of the synthetic XVERSE model (bench/synthetic.ts), same thread count, f16 KV on both sides.
 *
 *   a. chat: a conversation of 6 turns, each a 120-token user message and a 40-token reply (greedy, eos ignored,
 *      exactly 40 tokens on both sides). Each side keeps its KV across turns and computes only what is new: ours
 *      through generate(…, { cache: seq }) on one pool sequence, llama.cpp through one LlamaContextSequence fed
 *      the ids past its nextTokenIndex. Time to first token per turn, for Q4_0 and F16 files.
 *   b. decode: 4,096 tokens prefilled, then 32 single-token decode steps (F16 file).
 *   c. prefill: one 8,192-token prompt to its first token, llama.cpp with flash attention (Q4_0 file).
 *
 * Each side runs in its own child process (fork + IPC), so peak RSS is per side; both children of a part stay
 * loaded and their repeats alternate, so load from other processes hits both alike. Median of the repeats.
 * The last lines are `ratio_ttft_turn6_q4_0`, `ratio_ttft_turn6_f16` (llama.cpp time / ours), `ratio_decode_4k`
 * (ours / llama.cpp tok/s) and `ratio_prefill_8k` (ours / llama.cpp tok/s): above 1 is better for us.
 *
 *   node dist/bench/chat.js [--quick | --size full|medium|quick] [--threads N] [--runs N] [--parts chat,decode,prefill]
 *        [--turns 6] [--user 120] [--reply 40] [--chat-types q4_0,f16]
 *        [--decode-ctx 4096] [--decode-steps 32] [--decode-type f16]
 *        [--prefill-tokens 8192] [--prefill-type q4_0] [--prefill-runs N] [--llama-batch 2048] [--kv-type f16] [--allow-ts]
 */
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { ExportType } from "../src/gguf/export.js";
import { generate } from "../src/generate/generate.js";
import { loadModel } from "../src/model/load.js";
import type { KvSequence } from "../src/kv/sequence.js";
import { parseKvType, type KvType } from "../src/kv/layout.js";
import { buildSyntheticModel, describe, ensureSyntheticGguf, specBySize, syntheticDir, syntheticTokens } from "./synthetic.js";
import { contextThreads, loadAverage, machineInfo, median, openLlamaCpp, peakRssMiB } from "./machine.js";
import { benchFailed, helpFromHeader } from "./cli.js";

helpFromHeader(import.meta.url);

type Side = "ours" | "llama";
type Part = "chat" | "decode" | "prefill";

/** What a child is told on its command line: which engine, which file, which workload. */
interface ChildConfig {
  side: Side;
  part: Part;
  gguf: string;
  threads: number;
  /** Context (tokens) to create: the most the workload holds. */
  ctx: number;
  vocab: number;
  kvType: KvType;
  /** llama.cpp batch size (n_batch = n_ubatch); flash attention: true / false / "auto" (its default). */
  llamaBatch: number;
  flash: boolean | "auto";
  turns: number;
  user: number;
  reply: number;
  decodeCtx: number;
  decodeSteps: number;
  prefillTokens: number;
  /** Run even when our native kernels do not load (the TypeScript backend is 20-50× slower: no comparison). */
  allowTs: boolean;
}

/** One turn as a side saw it. */
interface TurnResult { promptTokens: number; computed: number; ttftMs: number; totalMs: number; generated: number }
type RunResult = { turns: TurnResult[] } | { decodeTokS: number } | { prefillMs: number; tokens: number };

type FromChild =
  | { type: "ready"; name: string; loadS: number; setupMs?: number; setupTokens?: number }
  | { type: "result"; data: RunResult }
  | { type: "bye"; peakRssMiB: number };

const log = (m: string) => process.stderr.write(m + "\n");

/** Token ids of a conversation's user message: deterministic per (run, turn), never special tokens. */
const userMessage = (c: ChildConfig, run: number, turn: number) => syntheticTokens(c.user, c.vocab, 1000 + 100 * run + turn);
/** A long prompt per run; different runs share no prefix, so neither side can reuse an earlier run's KV. */
const longPrompt = (n: number, vocab: number, run: number) => syntheticTokens(n, vocab, 50_000 + run);

/** The workload as both engines implement it. */
interface Engine {
  name: string;
  /** Generates `n` tokens greedily after `ids` (eos ignored), computing only what the sequence does not hold. */
  turn(ids: number[], n: number): Promise<TurnResult & { reply: number[] }>;
  /** A new, empty conversation. */
  reset(): Promise<void>;
  /** Cuts the sequence back to its first n tokens. */
  truncate(n: number): Promise<void>;
  /** Time from feeding one token to the (steps+1)-th generated token: `steps` single-token decode forwards. */
  decode(first: number, steps: number): Promise<number>;
}

async function oursEngine(c: ChildConfig): Promise<Engine> {
  const warnings: string[] = [];
  const { model, tokenizer } = await loadModel(c.gguf, { backend: "auto", threads: c.threads, kvType: c.kvType, ctxSize: c.ctx, onWarning: (m) => warnings.push(m) });
  for (const w of warnings) log(`  ours: ${w}`);
  if (model.backend.name !== "native" && !c.allowTs) {
    throw new Error(`our native kernels did not load (${warnings.join("; ") || model.backend.name}): build them (node scripts/build-native.mjs) or pass --allow-ts`);
  }
  // chat keeps prefix caching on (as chat sessions and the server do); the long-prompt parts turn it off so a
  // released run's blocks go back to the free list instead of staying cached and growing the pool
  const pool = model.createPool({ prefixCaching: c.part === "chat" });
  let seq: KvSequence = pool.sequence(c.ctx);
  const isa = (model.backend as { isa?: string }).isa;
  return {
    name: `ours (${model.backend.name}${isa ? ` ${isa}` : ""}, KV ${model.kvType})`,
    async turn(ids, n) {
      const t0 = performance.now();
      const it = generate(model, tokenizer, ids, { cache: seq, maxNewTokens: n, eosTokenIds: [], greedy: true });
      const reply: number[] = [];
      let ttft = 0, cached = 0;
      for (;;) {
        const r = await it.next();
        if (r.done) { cached = r.value.cachedTokens; break; }
        if (reply.length === 0) ttft = performance.now() - t0;
        reply.push(r.value.id);
      }
      return { promptTokens: ids.length, computed: ids.length - cached, ttftMs: ttft, totalMs: performance.now() - t0, generated: reply.length, reply };
    },
    async reset() {
      seq.release();
      seq = pool.sequence(c.ctx);
    },
    async truncate(n) { seq.truncate(n); },
    async decode(first, steps) {
      const ids = [...seq.tokens, first];
      const it = generate(model, tokenizer, ids, { cache: seq, maxNewTokens: steps + 1, eosTokenIds: [], greedy: true });
      let t0 = 0, k = 0;
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        if (k++ === 0) t0 = performance.now();
      }
      if (k !== steps + 1) throw new Error(`ours: ${k} tokens generated, expected ${steps + 1}`);
      return performance.now() - t0;
    },
  };
}

async function llamaEngine(c: ChildConfig): Promise<Engine> {
  const { llama } = await openLlamaCpp(c.threads);
  const model = await llama.loadModel({ modelPath: c.gguf, gpuLayers: 0 });
  const ctx = await model.createContext({
    contextSize: c.ctx, batchSize: c.llamaBatch, threads: contextThreads(c.threads), sequences: 1, flashAttention: c.flash,
  });
  const seq = ctx.getSequence();
  const opts = { temperature: 0, yieldEogToken: true };
  /** Makes the sequence hold a prefix of ids; returns how many of them it holds. */
  const sync = async (ids: number[]): Promise<number> => {
    const held: number[] = seq.contextTokens;
    let k = 0;
    while (k < held.length && k < ids.length - 1 && held[k] === ids[k]) k++;
    if (k < held.length) await seq.eraseContextTokenRanges([{ start: k, end: held.length }]);
    return k;
  };
  return {
    name: `llama.cpp (batch ${ctx.batchSize}, flash attention ${String(c.flash)}, KV F16)`,
    async turn(ids, n) {
      const t0 = performance.now();
      const start = await sync(ids);
      const reply: number[] = [];
      let ttft = 0;
      for await (const tok of seq.evaluate(ids.slice(start), opts)) {
        if (reply.length === 0) ttft = performance.now() - t0;
        reply.push(tok);
        if (reply.length >= n) break;
      }
      return { promptTokens: ids.length, computed: ids.length - start, ttftMs: ttft, totalMs: performance.now() - t0, generated: reply.length, reply };
    },
    async reset() { await seq.clearHistory(); },
    async truncate(n) {
      if (seq.nextTokenIndex > n) await seq.eraseContextTokenRanges([{ start: n, end: seq.nextTokenIndex }]);
    },
    async decode(first, steps) {
      let t0 = 0, k = 0;
      for await (const _tok of seq.evaluate([first], opts)) {
        if (k++ === 0) t0 = performance.now();
        if (k >= steps + 1) break;
      }
      if (k !== steps + 1) throw new Error(`llama.cpp: ${k} tokens generated, expected ${steps + 1}`);
      return performance.now() - t0;
    },
  };
}

/** A child process: loads one engine, warms it up, then answers the parent's run / exit messages. */
async function child(c: ChildConfig): Promise<void> {
  const send = (m: FromChild) => new Promise<void>((res) => process.send!(m, () => res()));
  const t0 = performance.now();
  const e = c.side === "ours" ? await oursEngine(c) : await llamaEngine(c);
  const loadS = (performance.now() - t0) / 1000;
  // warm-up: page in the weights, start the thread pools, compile the hot paths
  const warm = syntheticTokens(48, c.vocab, 999);
  await e.turn(warm.slice(0, 32), 4);
  await e.reset();
  let setupMs: number | undefined;
  let decodePrompt: number[] = [];
  if (c.part === "decode") {
    // the filled context, computed once: every run cuts back to it and decodes from there
    decodePrompt = longPrompt(c.decodeCtx + 1, c.vocab, 0);
    const r = await e.turn(decodePrompt.slice(0, c.decodeCtx + 1), 1);
    setupMs = r.ttftMs;
  }
  await send({ type: "ready", name: e.name, loadS, setupMs, setupTokens: c.part === "decode" ? c.decodeCtx : undefined });
  process.on("message", async (m: { cmd: "run"; run: number } | { cmd: "exit" }) => {
    if (m.cmd === "exit") {
      await send({ type: "bye", peakRssMiB: peakRssMiB() });
      process.exit(0);
    }
    let data: RunResult;
    if (c.part === "chat") {
      await e.reset();
      const turns: TurnResult[] = [];
      let history: number[] = [];
      for (let t = 0; t < c.turns; t++) {
        const ids = [...history, ...userMessage(c, m.run, t)];
        const r = await e.turn(ids, c.reply);
        if (r.generated !== c.reply) throw new Error(`${e.name}: turn ${t + 1} generated ${r.generated} tokens, expected ${c.reply}`);
        turns.push({ promptTokens: r.promptTokens, computed: r.computed, ttftMs: r.ttftMs, totalMs: r.totalMs, generated: r.generated });
        history = [...ids, ...r.reply];
      }
      data = { turns };
    } else if (c.part === "decode") {
      await e.truncate(c.decodeCtx);
      const ms = await e.decode(decodePrompt[c.decodeCtx], c.decodeSteps);
      data = { decodeTokS: c.decodeSteps / (ms / 1000) };
    } else {
      await e.reset();
      const r = await e.turn(longPrompt(c.prefillTokens, c.vocab, m.run + 1), 1);
      data = { prefillMs: r.ttftMs, tokens: r.computed };
    }
    await send({ type: "result", data });
  });
}

/** The parent's handle on one child: a queue of its messages. */
class ChildHandle {
  private readonly inbox: FromChild[] = [];
  private waiting: ((m: FromChild) => void) | null = null;
  private failed: Error | null = null;
  private readonly proc: ChildProcess;
  ready!: Extract<FromChild, { type: "ready" }>;

  constructor(readonly config: ChildConfig) {
    this.proc = fork(fileURLToPath(import.meta.url), ["--child", JSON.stringify(config)], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
    this.proc.stdout!.on("data", (d) => process.stderr.write(d)); // anything a library prints stays off our stdout
    this.proc.on("message", (m: FromChild) => this.deliver(m));
    this.proc.on("exit", (code) => {
      if (code !== 0) this.fail(new Error(`${config.side} child (${config.part}) exited with code ${code}`));
    });
  }

  private deliver(m: FromChild): void {
    if (this.waiting) { const w = this.waiting; this.waiting = null; w(m); } else this.inbox.push(m);
  }

  private fail(e: Error): void {
    this.failed = e;
    if (this.waiting) { const w = this.waiting; this.waiting = null; w({ type: "error", e } as never); }
  }

  async next<T extends FromChild["type"]>(type: T): Promise<Extract<FromChild, { type: T }>> {
    const m = this.inbox.shift() ?? (this.failed ? null : await new Promise<FromChild>((r) => (this.waiting = r)));
    if (!m || m.type !== type) throw this.failed ?? new Error(`expected "${type}" from the ${this.config.side} child, got ${JSON.stringify(m)}`);
    return m as Extract<FromChild, { type: T }>;
  }

  async start(): Promise<this> {
    this.ready = await this.next("ready");
    return this;
  }

  async run(run: number): Promise<RunResult> {
    this.proc.send({ cmd: "run", run });
    return (await this.next("result")).data;
  }

  async close(): Promise<number> {
    this.proc.send({ cmd: "exit" });
    return (await this.next("bye")).peakRssMiB;
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill();
  }
}

interface PartResult { names: Record<Side, string>; load: Record<Side, number>; rss: Record<Side, number>; setupMs?: Record<Side, number | undefined>; runs: Record<Side, RunResult[]> }

/** Starts both sides for one part (llama.cpp first, then ours, one at a time), alternates their runs, closes them. */
async function runPart(base: Omit<ChildConfig, "side">, runs: number, label: string): Promise<PartResult> {
  const sides: Side[] = ["llama", "ours"];
  const h: Partial<Record<Side, ChildHandle>> = {};
  try {
    for (const s of sides) {
      h[s] = new ChildHandle({ ...base, side: s });
      await h[s]!.start();
      log(`  ${label}: ${h[s]!.ready.name} loaded in ${h[s]!.ready.loadS.toFixed(1)} s` +
        (h[s]!.ready.setupMs !== undefined ? `, ${h[s]!.ready.setupTokens} tokens prefilled in ${(h[s]!.ready.setupMs! / 1000).toFixed(1)} s` : ""));
    }
    const out: PartResult["runs"] = { llama: [], ours: [] };
    for (let r = 0; r < runs; r++) {
      for (const s of sides) {
        const x = await h[s]!.run(r);
        out[s].push(x);
        log(`  ${label} run ${r + 1} ${s}: ${summarize(x)}`);
      }
    }
    const rss = { llama: await h.llama!.close(), ours: await h.ours!.close() };
    return {
      names: { llama: h.llama!.ready.name, ours: h.ours!.ready.name }, load: { llama: h.llama!.ready.loadS, ours: h.ours!.ready.loadS },
      rss, setupMs: { llama: h.llama!.ready.setupMs, ours: h.ours!.ready.setupMs }, runs: out,
    };
  } catch (e) {
    for (const s of sides) h[s]?.kill();
    throw e;
  }
}

function summarize(x: RunResult): string {
  if ("turns" in x) return "TTFT " + x.turns.map((t) => `${t.ttftMs.toFixed(0)}`).join(" / ") + " ms (computed " + x.turns.map((t) => t.computed).join(" / ") + " tokens)";
  if ("decodeTokS" in x) return `decode ${x.decodeTokS.toFixed(2)} tok/s`;
  return `${x.tokens} tokens to the first token in ${(x.prefillMs / 1000).toFixed(2)} s (${(x.tokens / (x.prefillMs / 1000)).toFixed(1)} tok/s)`;
}

const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      child: { type: "string" },
      quick: { type: "boolean" }, size: { type: "string" }, threads: { type: "string" }, runs: { type: "string" }, parts: { type: "string" },
      turns: { type: "string" }, user: { type: "string" }, reply: { type: "string" }, "chat-types": { type: "string" },
      "decode-ctx": { type: "string" }, "decode-steps": { type: "string" }, "decode-type": { type: "string" },
      "prefill-tokens": { type: "string" }, "prefill-type": { type: "string" }, "prefill-runs": { type: "string" },
      "llama-batch": { type: "string" }, "kv-type": { type: "string" }, "allow-ts": { type: "boolean" },
    },
  });
  if (v.child) return child(JSON.parse(v.child) as ChildConfig);

  const m = machineInfo();
  const size = v.size ?? (v.quick ? "quick" : "full");
  const spec = specBySize(size);
  const threads = Number(v.threads ?? m.physical);
  const runs = Number(v.runs ?? 3);
  const parts = (v.parts ?? "chat,decode,prefill").split(",") as Part[];
  for (const p of parts) if (!["chat", "decode", "prefill"].includes(p)) throw new Error(`--parts: unknown part ${p} (chat, decode, prefill)`);
  const turns = Number(v.turns ?? 6), user = Number(v.user ?? 120), reply = Number(v.reply ?? 40);
  const chatTypes = (v["chat-types"] ?? "q4_0,f16").split(",") as ExportType[];
  const decodeCtx = Number(v["decode-ctx"] ?? 4096), decodeSteps = Number(v["decode-steps"] ?? 32);
  const decodeType = (v["decode-type"] ?? "f16") as ExportType;
  const prefillTokens = Number(v["prefill-tokens"] ?? 8192), prefillType = (v["prefill-type"] ?? "q4_0") as ExportType;
  // an 8K prefill of the full model takes minutes per side: one run unless asked, three on the smaller models
  const prefillRuns = Number(v["prefill-runs"] ?? (size === "full" ? 1 : runs));
  const llamaBatch = Number(v["llama-batch"] ?? 2048);
  const kvType = parseKvType(v["kv-type"] ?? "f16");
  for (const t of [...chatTypes, decodeType, prefillType]) if (!["f16", "q8_0", "q4_0", "f32"].includes(t)) throw new Error(`unknown GGUF type ${t} (f16, q8_0, q4_0, f32)`);

  const dir = syntheticDir(spec);
  console.log(`# xverse.ts chat / long-context benchmark`);
  console.log(`machine: ${m.cpu}, ${m.physical} physical / ${m.logical} logical cores, ${m.memGiB.toFixed(0)} GiB, ${m.flags.join(" ")}`);
  console.log(`threads: ${threads} for both engines; runs: ${runs} (median), prefill runs: ${prefillRuns}; KV: ours ${kvType}, llama.cpp F16`);
  console.log(`model: synthetic XVERSE architecture, random weights — ${describe(spec)}`);
  console.log(`files: ${dir} (both engines load the same model-<type>.gguf)`);
  console.log(`load average at start: ${loadAverage()}`);
  buildSyntheticModel(join(dir, "f16"), spec, "f16", log);

  const base = { threads, vocab: spec.vocab, kvType, llamaBatch, turns, user, reply, decodeCtx, decodeSteps, prefillTokens, allowTs: v["allow-ts"] === true };
  const ratios: string[] = [];

  if (parts.includes("chat")) {
    for (const type of chatTypes) {
      const gguf = ensureSyntheticGguf(dir, type, log);
      const r = await runPart({ ...base, part: "chat", gguf, ctx: turns * (user + reply) + 64, flash: "auto" }, runs, `chat ${type}`);
      const turn = (s: Side, t: number, k: keyof TurnResult) => median(r.runs[s].map((x) => (x as { turns: TurnResult[] }).turns[t][k]));
      console.log("");
      console.log(`## a. ${turns}-turn chat, ${type.toUpperCase()} GGUF: ${user}-token user messages, ${reply}-token replies (greedy, eos ignored), KV kept across turns`);
      console.log(`${r.names.llama}; ${r.names.ours}`);
      console.log("");
      console.log(`| turn | prompt tokens | computed llama.cpp / ours | TTFT llama.cpp ms | TTFT ours ms | TTFT ratio (llama.cpp / ours) | reply decode tok/s llama.cpp | reply decode tok/s ours |`);
      console.log(`|---|---|---|---|---|---|---|---|`);
      for (let t = 0; t < turns; t++) {
        const dec = (s: Side) => median(r.runs[s].map((x) => { const u = (x as { turns: TurnResult[] }).turns[t]; return (u.generated - 1) / ((u.totalMs - u.ttftMs) / 1000); }));
        console.log(`| ${t + 1} | ${turn("ours", t, "promptTokens")} | ${turn("llama", t, "computed")} / ${turn("ours", t, "computed")} | ${f1(turn("llama", t, "ttftMs"))} | ${f1(turn("ours", t, "ttftMs"))} | ${f2(turn("llama", t, "ttftMs") / turn("ours", t, "ttftMs"))} | ${f2(dec("llama"))} | ${f2(dec("ours"))} |`);
      }
      const conv = (s: Side) => median(r.runs[s].map((x) => (x as { turns: TurnResult[] }).turns.reduce((a, u) => a + u.totalMs, 0)));
      console.log("");
      console.log(`whole conversation (${turns} turns): llama.cpp ${f1(conv("llama") / 1000)} s, ours ${f1(conv("ours") / 1000)} s · load: llama.cpp ${f1(r.load.llama)} s, ours ${f1(r.load.ours)} s · peak RSS: llama.cpp ${r.rss.llama.toFixed(0)} MiB, ours ${r.rss.ours.toFixed(0)} MiB`);
      ratios.push(`ratio_ttft_turn6_${type}: ${f2(turn("llama", turns - 1, "ttftMs") / turn("ours", turns - 1, "ttftMs"))}`);
    }
  }

  if (parts.includes("decode")) {
    const gguf = ensureSyntheticGguf(dir, decodeType, log);
    const r = await runPart({ ...base, part: "decode", gguf, ctx: decodeCtx + decodeSteps + 64, flash: "auto" }, runs, `decode ${decodeType}`);
    const tps = (s: Side) => median(r.runs[s].map((x) => (x as { decodeTokS: number }).decodeTokS));
    console.log("");
    console.log(`## b. decode with ${decodeCtx} tokens of filled context, ${decodeType.toUpperCase()} GGUF: ${decodeSteps} single-token steps (greedy)`);
    console.log(`${r.names.llama}; ${r.names.ours}`);
    console.log("");
    console.log(`| engine | decode tok/s | ${decodeCtx}-token prefill s (once, chunks: llama.cpp ${llamaBatch}, ours 512) | load s | peak RSS MiB |`);
    console.log(`|---|---|---|---|---|`);
    for (const s of ["llama", "ours"] as Side[]) console.log(`| ${s === "ours" ? "ours" : "llama.cpp"} | ${f2(tps(s))} | ${f1(r.setupMs![s]! / 1000)} | ${f1(r.load[s])} | ${r.rss[s].toFixed(0)} |`);
    ratios.push(`ratio_decode_4k: ${f2(tps("ours") / tps("llama"))}`);
  }

  if (parts.includes("prefill")) {
    const gguf = ensureSyntheticGguf(dir, prefillType, log);
    const r = await runPart({ ...base, part: "prefill", gguf, ctx: prefillTokens + 64, flash: true }, prefillRuns, `prefill ${prefillType}`);
    const tps = (s: Side) => median(r.runs[s].map((x) => { const p = x as { prefillMs: number; tokens: number }; return p.tokens / (p.prefillMs / 1000); }));
    const secs = (s: Side) => median(r.runs[s].map((x) => (x as { prefillMs: number }).prefillMs / 1000));
    console.log("");
    console.log(`## c. prefill of one ${prefillTokens}-token prompt to its first token, ${prefillType.toUpperCase()} GGUF (llama.cpp flash attention on)`);
    console.log(`${r.names.llama}; ${r.names.ours}`);
    console.log("");
    console.log(`| engine | time to first token s | prefill tok/s | load s | peak RSS MiB (whole process) |`);
    console.log(`|---|---|---|---|---|`);
    for (const s of ["llama", "ours"] as Side[]) console.log(`| ${s === "ours" ? "ours" : "llama.cpp"} | ${f2(secs(s))} | ${f2(tps(s))} | ${f1(r.load[s])} | ${r.rss[s].toFixed(0)} |`);
    ratios.push(`ratio_prefill_8k: ${f2(tps("ours") / tps("llama"))}`);
  }

  console.log("");
  console.log("Peak RSS is each child process's maxRSS: llama.cpp's includes the weights it mmaps (file pages it touched),");
  console.log("ours the weights it read into memory and its KV pool.");
  console.log(`load average at end: ${loadAverage()}`);
  console.log("");
  for (const l of ratios) console.log(l);
}

main().catch(benchFailed);
