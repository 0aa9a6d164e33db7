/**
 * The engine that runs the model in this tab: chat through chatStream (the library's prompt builders, tool-call
 * parsing included), text through generate. Between tokens it yields to the page so it can paint and Stop works.
 */
import { chatStream } from "../src/chat/chat.js";
import type { ChatMessage } from "../src/chat/types.js";
import { generate } from "../src/generate/generate.js";
import type { BrowserModel } from "../src/browser/load.js";
import { nextTask } from "./dom.js";
import type { Engine, StreamEvents } from "./engine.js";

export class LocalEngine implements Engine {
  model: BrowserModel | null = null;

  private need(): BrowserModel {
    if (!this.model) throw new Error("The model is still loading: wait for it (the status line above says when it is ready)");
    return this.model;
  }

  async chat(req: Parameters<Engine["chat"]>[0], ev: StreamEvents): Promise<void> {
    const m = this.need();
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

  async complete(req: Parameters<Engine["complete"]>[0], ev: StreamEvents): Promise<void> {
    const m = this.need();
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
