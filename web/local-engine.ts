/**
 * The engine that runs the model where it is loaded (the /local worker, or the tab itself; local-host.ts): chat
 * through chatStream (the library's prompt builders, tool-call parsing included), text through generate. Between
 * tokens it yields to the event loop, so Stop (and, in the tab, painting) gets through.
 */
import { chatStream } from "../src/chat/chat.js";
import type { ChatMessage } from "../src/chat/types.js";
import { generate } from "../src/generate/generate.js";
import type { BrowserModel } from "../src/browser/load.js";
import { nextTask } from "./dom.js";
import type { Engine, StreamEvents } from "./engine.js";

export class LocalEngine implements Engine {
  model: BrowserModel | null = null;
  /** Runs in flight, and the signal that ends them all when the model is switched (release()). */
  private readonly runs = new Set<Promise<void>>();
  private switching = new AbortController();

  /**
   * Ends every run on the current model (as Stop would) and waits until none touches it, then hands the model
   * over (the page disposes of it before loading the next one). Engine calls made meanwhile wait for a model.
   */
  async release(): Promise<BrowserModel | null> {
    const m = this.model;
    this.model = null;
    this.switching.abort();
    await Promise.allSettled([...this.runs]);
    this.switching = new AbortController();
    return m;
  }

  /** Runs `body` with a signal that aborts on the request's Stop or on a model switch. */
  private async track(signal: AbortSignal, body: (signal: AbortSignal) => Promise<void>): Promise<void> {
    const both = new AbortController();
    const stop = () => both.abort();
    const switching = this.switching.signal;
    for (const s of [signal, switching]) {
      if (s.aborted) both.abort();
      else s.addEventListener("abort", stop, { once: true });
    }
    const run = body(both.signal);
    this.runs.add(run);
    try {
      await run;
    } finally {
      this.runs.delete(run);
      signal.removeEventListener("abort", stop);
      switching.removeEventListener("abort", stop);
    }
  }

  private need(): BrowserModel {
    if (!this.model) throw new Error("The model is still loading: wait for it (the status line above says when it is ready)");
    return this.model;
  }

  chat(req: Parameters<Engine["chat"]>[0], ev: StreamEvents): Promise<void> {
    const m = this.need();
    return this.track(req.signal, (signal) => this.chatOn(m, { ...req, signal }, ev));
  }

  private async chatOn(m: BrowserModel, req: Parameters<Engine["chat"]>[0], ev: StreamEvents): Promise<void> {
    const history: ChatMessage[] = req.messages.map((x) => ({ role: x.role, content: x.content }));
    const it = chatStream(m.model, m.tokenizer, history, {
      system: req.system, tools: req.tools?.length ? req.tools : undefined,
      settings: m.settings, generationConfig: m.generationConfig,
      maxNewTokens: req.maxTokens, greedy: req.temperature === 0, temperature: req.temperature || undefined,
      signal: req.signal,
    });
    for (;;) {
      const r = await it.next();
      if (r.done) {
        const call = r.value.reply.call;
        if (call) ev.onToolCalls?.([{ id: "call_0", type: "function", function: { name: call.name, arguments: JSON.stringify(call.arguments) } }]);
        // eos counts as a generated token, as the server's usage counts it
        ev.onUsage?.(r.value.ids.length);
        return;
      }
      if (r.value) ev.onText(r.value);
      await nextTask();
    }
  }

  complete(req: Parameters<Engine["complete"]>[0], ev: StreamEvents): Promise<void> {
    const m = this.need();
    return this.track(req.signal, (signal) => this.completeOn(m, { ...req, signal }, ev));
  }

  private async completeOn(m: BrowserModel, req: Parameters<Engine["complete"]>[0], ev: StreamEvents): Promise<void> {
    const ids = m.tokenizer.encode(req.prompt).ids;
    const greedy = req.temperature === 0;
    const it = generate(m.model, m.tokenizer, ids, {
      maxNewTokens: req.maxTokens, greedy,
      temperature: greedy ? undefined : req.temperature, topK: greedy ? undefined : req.topK || undefined,
      topP: greedy ? undefined : req.topP, signal: req.signal,
    });
    let n = 0;
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      n++;
      if (r.value.text) ev.onText(r.value.text);
      await nextTask();
    }
    ev.onUsage?.(n);
  }
}
