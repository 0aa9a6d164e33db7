/**
 * The worker side of a request: prompt → tokens → decode → events. Several jobs run at once in one worker and
 * share one decode loop (batch.ts): each step is one batched forward pass over every active job, and between
 * steps the loop yields to the event loop, so abort messages and new jobs are seen between tokens. A job's KV
 * rows are dropped from the shared cache when it ends.
 */
import { constrainedJsonHook, constrainedToolCallHook } from "../chat/constrained.js";
import { partialToolCall, ToolCallStream } from "../chat/parse.js";
import { buildPrompt, NO_CHAT_SETTINGS, type ChatSettings } from "../chat/prompt.js";
import { normalizeTools, THINK_START } from "../chat/tools.js";
import type { BuiltPrompt } from "../chat/types.js";
import { XverseError } from "../errors.js";
import type { GenerateOptions } from "../generate/generate.js";
import { samplingOptions } from "../generate/sampling.js";
import type { LoadedModel } from "../model/load.js";
import { PROJECTIONS } from "../model/weights.js";
import { BatchDecoder } from "./batch.js";
import { PromptBound } from "./prompt-bound.js";
import { ApiError, badField } from "./errors.js";
import { logSumExp, promptLogprobs, promptPieces, tokenPieces, toTokenLogprobs, topLogprobs } from "./logprobs.js";
import type { ChatJob, CompletionJob, Job, ModelInfo, Sampling, ToMain, ToolRequest } from "./protocol.js";

type Emit = (m: ToMain) => void;
type Finish = "stop" | "length" | "tool_calls" | "abort";

export class Engine {
  private readonly eosIds: number[];
  private readonly eosText: string;
  /** All jobs' decode steps run through here, batched into one forward pass per step. */
  readonly batch: BatchDecoder;

  constructor(
    private readonly loaded: LoadedModel,
    readonly modelId: string,
    private readonly settings: ChatSettings = NO_CHAT_SETTINGS,
    private readonly format: string | null = null,
  ) {
    const { model, tokenizer: tok, generationConfig: gc } = loaded;
    this.eosIds = gc.eosTokenIds.length ? gc.eosTokenIds : model.config.eosTokenIds.length ? model.config.eosTokenIds : tok.eosId !== null ? [tok.eosId] : [];
    this.eosText = this.eosIds.length ? tok.idToToken(this.eosIds[0]) ?? "" : "";
    this.batch = new BatchDecoder(model, tok, model.createPool(), model.ctxSize);
    this.bound = new PromptBound(tok, model.ctxSize);
  }

  /** Refuses prompts certainly over the context before they are tokenized on this (the decode loop's) thread. */
  private readonly bound: PromptBound;

  info(): ModelInfo {
    const m = this.loaded.model;
    // the projections' formats by parameter count: what "quantization" means for a checkpoint
    const share = new Map<string, number>();
    for (const layer of m.weights.layers) {
      for (const p of PROJECTIONS) share.set(layer[p].format, (share.get(layer[p].format) ?? 0) + layer[p].rows * layer[p].cols);
    }
    const quantization = [...share].sort((a, b) => b[1] - a[1]).map(([f]) => f).join("+");
    return { id: this.modelId, path: this.loaded.path, contextLength: m.ctxSize, kv: m.describeKv(this.batch.pool.budgetBytes), vocabSize: m.config.vocabSize, backend: m.backend.name, quantization };
  }

  /** Runs one job to its end; every outcome, failures included, is reported through `emit`. */
  async run(id: number, job: Job, signal: AbortSignal, emit: Emit): Promise<void> {
    try {
      // before any response header: token ids in logit_bias must exist
      const V = this.loaded.model.config.vocabSize;
      const bad = Object.keys(job.sampling.logitBias ?? {}).find((t) => Number(t) >= V);
      if (bad !== undefined) throw badField("logit_bias", `logit_bias names token ${bad}, but this model's vocabulary has ${V} tokens (0 … ${V - 1})`);
      if (job.kind === "chat" && (job.sampling.n ?? 1) > 1) await this.choices(id, job, signal, emit);
      else if (job.kind === "chat") await this.chat(id, job, signal, emit);
      else await this.completion(id, job, signal, emit);
    } catch (e) {
      const err = e instanceof ApiError ? e
        : e instanceof XverseError ? new ApiError(400, e.message, job.kind === "chat" ? "messages" : "prompt", e.code)
        : new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, null, "internal_error");
      emit({ type: "error", id, status: err.status, message: err.message, param: err.param, code: err.code });
    }
  }

  /** /tokenize (llama.cpp's shape: ids, optionally with each token's text) and /detokenize. */
  tool(m: ToolRequest): ToMain {
    const tok = this.loaded.tokenizer;
    if (m.type === "tokenize") {
      const tokens = tok.encode(m.content, { addSpecialTokens: m.addSpecial }).ids;
      if (!m.withPieces) return { type: "tokens", id: m.id, tokens };
      const pieces = tokenPieces(tok);
      return { type: "tokens", id: m.id, tokens, pieces: tokens.map((t) => pieces[t]) };
    }
    const V = this.loaded.model.config.vocabSize;
    const bad = m.tokens.findIndex((t) => t >= V);
    if (bad >= 0) return { type: "error", id: m.id, status: 400, message: `tokens[${bad}] = ${m.tokens[bad]} is not a token id of this model (vocabulary size ${V})`, param: `tokens[${bad}]`, code: "invalid_value" };
    return { type: "text", id: m.id, content: tok.decode(m.tokens, { skipSpecialTokens: false }) };
  }

  /** generate() options from the request, with generation_config.json filling what it leaves out (as chat() does). */
  private decoding(s: Sampling, maxNew: number): GenerateOptions {
    return {
      maxNewTokens: maxNew,
      ...samplingOptions(s, this.loaded.generationConfig),
      eosTokenIds: s.ignoreEos ? [] : this.eosIds,
      stopStrings: s.stop,
    };
  }

  private async chat(id: number, job: ChatJob, signal: AbortSignal, emit: Emit): Promise<void> {
    const { model, tokenizer: tok, generationConfig: gc } = this.loaded;
    const ctx = model.ctxSize;
    const useTools = job.tools.length > 0 && job.toolChoice !== "none";
    const requested = job.sampling.maxTokens ?? gc.maxNewTokens;
    let prompt: BuiltPrompt;
    try {
      prompt = buildPrompt(tok, this.bound.trimChat(job.messages), {
        format: this.format, config: { ...model.config, maxPositionEmbeddings: model.ctxSize }, generationConfig: gc, settings: this.settings,
        maxNewTokens: Math.max(1, Math.min(requested, ctx - 1)),
        tools: useTools ? job.tools : undefined,
      });
    } catch (e) {
      if (e instanceof XverseError) throw badField(e.code === "bad_tools" ? "tools" : "messages", e.message, e.code);
      throw e;
    }
    // The builder drops old turns to fit its budget (the official behaviour, and what a long chat needs), but it
    // would also cut the newest message itself: refuse that instead of answering a question the model never saw.
    if (prompt.truncated) {
      const last = job.messages[job.messages.length - 1];
      const own = tok.encode(last.content, { addSpecialTokens: false }).ids.length;
      if (own + 8 > prompt.budget) {
        throw new ApiError(400, `This model's maximum context length is ${ctx} tokens, of which ${prompt.budget} are for the prompt with max_tokens ${requested}, but the last message alone has ${own} tokens`, `messages[${job.messages.length - 1}].content`, "context_length_exceeded");
      }
    }
    // max_tokens gets what the prompt leaves
    const room = ctx - prompt.ids.length;
    if (room < 1 && requested > 0) {
      throw new ApiError(400, `This model's maximum context length is ${ctx} tokens, but the messages take ${prompt.ids.length} tokens and leave no room for a reply`, "messages", "context_length_exceeded");
    }
    const maxNew = Math.min(requested, room);
    emit({ type: "start", id, promptTokens: prompt.ids.length, maxTokens: maxNew });
    if (maxNew === 0) {
      emit({ type: "end", id, finishReason: "length", completionTokens: 0, text: "" });
      return;
    }

    const opts = this.decoding(job.sampling, maxNew);
    // a reply is decoded on its own, as the official chat does (a completion continues its prompt's text)
    opts.continuation = false;
    let cached = 0;
    if (useTools) {
      const specs = normalizeTools(job.tools);
      const tc = job.toolChoice;
      // a forced call is constrained from the first token, so even a tiny model writes one that parses
      const allowed = typeof tc === "object" ? specs.filter((t) => t.name === tc.name) : specs;
      // with the budget, a forced call closes within max_tokens (the shortest way to finish always fits)
      opts.logitsHook = constrainedToolCallHook(tok, allowed, { force: tc !== "auto", eosTokenIds: this.eosIds, maxNewTokens: maxNew });
    } else if (job.responseFormat && job.responseFormat.type !== "text") {
      // the whole reply is one JSON document (of the schema, if one was given), closed within max_tokens
      const rf = job.responseFormat;
      opts.logitsHook = constrainedJsonHook(tok, rf.type === "json_schema" ? rf.schema : null, { eosTokenIds: this.eosIds, maxNewTokens: maxNew });
    }
    // logprobs: alternatives come from the logits as the token was picked (after any constraint mask)
    const k = job.logprobs ?? 0;
    const pieces = k > 0 ? tokenPieces(tok) : [];
    const tops: Record<string, number>[] = [];
    if (k > 0) {
      const inner = opts.logitsHook;
      opts.logitsHook = (ids, logits) => { inner?.(ids, logits); tops.push(topLogprobs(logits, k, logSumExp(logits), pieces)); };
    }
    opts.signal = signal;
    opts.onPrefill = (n) => { cached = n; };
    const calls = useTools ? new ToolCallStream() : null;
    const it = this.batch.generate(prompt.ids, opts);
    let all = "", shown = 0, n = 0, finish: Finish = "length", done = false;
    let call: { name: string; arguments: string } | undefined, before = "";
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) { finish = mapFinish(r.value.finishReason); done = true; break; }
        n++;
        const delta = this.eosText ? r.value.text.split(this.eosText).join("") : r.value.text;
        all += delta;
        const lp = job.logprobs !== null ? { token: delta, logprob: r.value.logprob, top: k > 0 ? tops.shift() ?? null : null, offset: 0 } : undefined;
        const c = calls ? calls.push(delta) : { text: delta };
        // a token whose text is held back (a possible call marker) still reports its logprob
        if (c.text || lp) { emit({ type: "delta", id, text: c.text, ...(lp && { logprob: lp }) }); shown += c.text.length; }
        if (!("call" in c) || !c.call) continue;
        // a finished call ends the turn: the client runs the tool and answers with a `tool` message
        if (c.call.call) {
          call = { name: c.call.call.name, arguments: JSON.stringify(c.call.call.arguments) };
          before = c.call.text;
          finish = "tool_calls";
        } else finish = "stop";
        break;
      }
    } finally {
      if (!done) await it.return(undefined as never);
    }
    if (signal.aborted) finish = "abort";
    // a call cut short (max_tokens) or broken still comes back as a call, with the arguments written so far:
    // XVERSE's call markup is never reply text
    const held = all.slice(shown);
    const forced = job.toolChoice !== "auto";
    const names = typeof job.toolChoice === "object" ? [job.toolChoice.name] : job.tools.map((t) => t.function.name);
    const cut = !call && calls && (held.startsWith(THINK_START) || (forced && held)) ? partialToolCall(held, names, forced) : null;
    if (cut) {
      call = cut;
      before = all.slice(0, shown).trimEnd();
      if (finish !== "length" && finish !== "abort") finish = "tool_calls";
    }
    // without a call, whatever was held back (marker-like text) is reply text after all
    else if (!call && all.length > shown) emit({ type: "delta", id, text: held });
    emit({ type: "end", id, finishReason: finish, completionTokens: n, cachedTokens: cached, text: call ? before : all, ...(call && { toolCall: call }) });
  }

  /**
   * n > 1: n replies to one prompt. Choice 0 starts alone; once its prompt is in the KV pool (its first token
   * came) the others start and find the prompt's full blocks there, so the prompt is computed once. Each choice
   * samples with its own seed (seed + i; greedy choices are all the same, as with OpenAI). Events carry the
   * choice index; the request has one start.
   */
  private async choices(id: number, job: ChatJob, signal: AbortSignal, emit: Emit): Promise<void> {
    const n = job.sampling.n ?? 1;
    const base = job.sampling.seed ?? Math.floor(Math.random() * 2 ** 31);
    let ready!: () => void;
    const prefilled = new Promise<void>((r) => (ready = r));
    let running = n;
    const tagged = (i: number): Emit => (m) => {
      if (m.type === "start") {
        if (i === 0) emit(m);
        return;
      }
      if (i === 0) ready();
      if (m.type === "end") emit({ ...m, choice: i, last: --running === 0 });
      else emit(m.type === "delta" ? { ...m, choice: i } : m);
    };
    // one choice failing ends the request: the others stop too
    const all = new AbortController();
    const stop = (): void => all.abort();
    signal.addEventListener("abort", stop, { once: true });
    const one = (i: number): Promise<void> =>
      this.chat(id, { ...job, sampling: { ...job.sampling, n: 1, seed: base + i } }, all.signal, tagged(i)).catch((e: unknown) => { stop(); throw e; });
    try {
      const first = one(0);
      // a failure before the first token (prompt too long…) is the request's error: the others never start
      await Promise.race([prefilled, first]);
      await Promise.all([first, ...Array.from({ length: n - 1 }, (_, k) => one(k + 1))]);
    } finally {
      signal.removeEventListener("abort", stop);
    }
  }

  private async completion(id: number, job: CompletionJob, signal: AbortSignal, emit: Emit): Promise<void> {
    const { model, tokenizer: tok } = this.loaded;
    const ctx = model.ctxSize, V = model.config.vocabSize;
    let ids: number[];
    if (typeof job.prompt === "string") {
      this.bound.checkText(job.prompt, "prompt");
      ids = tok.encode(job.prompt, { addSpecialTokens: true }).ids;
    }
    else {
      const bad = job.prompt.findIndex((t) => t >= V);
      if (bad >= 0) throw badField("prompt", `prompt[${bad}] = ${job.prompt[bad]} is not a token id of this model (vocabulary size ${V})`);
      ids = job.prompt;
    }
    if (ids.length === 0) {
      if (tok.bosId === null) throw badField("prompt", "prompt is empty and this model has no BOS token to start from");
      ids = [tok.bosId];
    }
    if (ids.length > ctx) {
      throw new ApiError(400, `This model's maximum context length is ${ctx} tokens, but the prompt has ${ids.length} tokens`, "prompt", "context_length_exceeded");
    }
    const maxNew = Math.min(job.sampling.maxTokens ?? 16, ctx - ids.length);
    const k = job.logprobs ?? 0;
    const pieces = job.logprobs !== null && k > 0 ? tokenPieces(tok) : [];
    let offset = 0;
    let echo: { text: string; logprobs: ReturnType<typeof toTokenLogprobs> | null } | undefined;
    if (job.echo) {
      const p = promptPieces(tok, ids);
      const lp = job.logprobs !== null ? await promptLogprobs(model, ids, k, pieces, signal) : null;
      echo = { text: p.text, logprobs: lp ? toTokenLogprobs(p, lp) : null };
      offset = [...p.text].length;
    }
    emit({ type: "start", id, promptTokens: ids.length, maxTokens: maxNew, ...(echo && { echo }) });
    if (maxNew === 0 || signal.aborted) {
      emit({ type: "end", id, finishReason: signal.aborted ? "abort" : "length", completionTokens: 0, text: "" });
      return;
    }

    const opts = this.decoding(job.sampling, maxNew);
    opts.signal = signal;
    // the hook sees each step's raw logits, before the token is picked; the batch loop may run ahead of this
    // consumer, so the alternatives wait in a queue, one entry per token. The decoder computes the chosen token's
    // logprob with the same logSumExp, so it compares exactly with its alternatives.
    const tops: Record<string, number>[] = [];
    if (k > 0) opts.logitsHook = (_ids, logits) => { tops.push(topLogprobs(logits, k, logSumExp(logits), pieces)); };
    const it = this.batch.generate(ids, opts);
    let text = "", n = 0;
    let r = await it.next();
    while (!r.done) {
      n++;
      const d = r.value.text;
      text += d;
      const lp = job.logprobs !== null
        ? { token: d, logprob: r.value.logprob, top: k > 0 ? tops.shift() ?? null : null, offset }
        : undefined;
      offset += [...d].length;
      emit({ type: "delta", id, text: d, ...(lp && { logprob: lp }) });
      r = await it.next();
    }
    emit({ type: "end", id, finishReason: mapFinish(r.value.finishReason), completionTokens: n, cachedTokens: r.value.cachedTokens, text });
  }
}

function mapFinish(f: "eos" | "stop" | "length" | "abort"): Finish {
  return f === "eos" ? "stop" : f;
}
