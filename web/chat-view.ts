/**
 * The chat view, for the server (/) and for the in-tab model (/local): conversations in localStorage with a
 * list to switch between them, streamed replies rendered as sanitized Markdown, tool calls as collapsible
 * cards, Stop, Regenerate (the last reply), Edit (the last message), tokens/s under each reply.
 */
import { byId, h, rateMeter } from "./dom.js";
import type { Engine } from "./engine.js";
import { markdownSink, renderMarkdown } from "./markdown.js";
import { ConversationStore, type Conversation, type Message, type ToolCallOut } from "./store.js";

export interface ChatViewOptions {
  engine: Engine;
  store: ConversationStore;
  /** Whether the Tools box is shown (OpenAI tool specs, sent with each request). */
  tools?: boolean;
  /** Called before each send; may throw (e.g. the model is still loading). */
  ready?: () => void;
  /** Prefix of the view's element ids, where another view shares the page (/local: "chat-"). */
  prefix?: string;
}

function toolCard(call: ToolCallOut): HTMLElement {
  let args = call.function.arguments;
  try { args = JSON.stringify(JSON.parse(args), null, 2); } catch { /* partial or not JSON: as sent */ }
  return h("details", { class: "tool-call" },
    h("summary", {}, "Tool call: ", h("code", {}, call.function.name || "…")),
    h("pre", {}, h("code", {}, args)));
}

export function mountChat(root: HTMLElement, o: ChatViewOptions): void {
  const P = o.prefix ?? "";
  root.append(
    h("div", { class: "chat" },
      h("aside", { class: "conversations" },
        h("details", { id: P + "conv-panel", open: window.matchMedia("(min-width: 760px)").matches },
          h("summary", {}, "Conversations"),
          h("button", { id: P + "reset", type: "button" }, "New chat"),
          h("ul", { id: P + "conv-list" }))),
      h("section", { class: "thread" },
        h("details", { class: "settings" },
          h("summary", { class: "muted" }, "Settings"),
          h("label", { class: "muted", for: P + "system" }, "System prompt (sent first, when set)"),
          h("textarea", { id: P + "system", rows: 2 }),
          h("div", { class: "row" },
            h("label", { class: "muted" }, "temperature ", h("input", { id: P + "temperature", type: "number", min: 0, max: 2, step: 0.05, value: "0.5" })),
            h("label", { class: "muted" }, "max tokens ", h("input", { id: P + "max_tokens", type: "number", min: 1, max: 8192, value: "256" }))),
          o.tools ? h("label", { class: "muted", for: P + "tools" }, "Tools (a JSON array of OpenAI tool specs; empty: none)") : null,
          o.tools ? h("textarea", { id: P + "tools", rows: 3, placeholder: '[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]' }) : null),
        h("div", { id: P + "log", "aria-live": "polite" }),
        h("div", { id: P + "stats", class: "muted" }),
        h("div", { id: P + "error", class: "error" }),
        h("form", { id: P + "form" },
          h("textarea", { id: P + "input", rows: 3, placeholder: "Type a message — Enter sends, Shift+Enter adds a line" }),
          h("div", { class: "row" },
            h("button", { id: P + "send", class: "primary", type: "submit" }, "Send"),
            h("button", { id: P + "stop", type: "button", disabled: true }, "Stop"))))));

  const log = byId(P + "log"), input = byId<HTMLTextAreaElement>(P + "input");
  let conv: Conversation = o.store.current();
  let controller: AbortController | null = null;

  const busy = (on: boolean) => {
    byId<HTMLButtonElement>(P + "send").disabled = on;
    byId<HTMLButtonElement>(P + "stop").disabled = !on;
    for (const b of log.querySelectorAll<HTMLButtonElement>(".actions button")) b.disabled = on;
  };

  function renderList(): void {
    const ul = byId(P + "conv-list");
    ul.textContent = "";
    for (const c of o.store.list()) {
      const li = h("li", { class: c.id === conv.id ? "current" : "" },
        h("button", { type: "button", class: "pick", title: c.title, onclick: () => { if (!controller) { conv = o.store.select(c.id); render(); } } }, c.title),
        h("button", { type: "button", class: "delete", title: "Delete this conversation", "aria-label": "Delete", onclick: () => {
          if (controller) return;
          o.store.remove(c.id);
          conv = o.store.current();
          render();
        } }, "×"));
      li.dataset.id = c.id;
      ul.append(li);
    }
  }

  function bubble(m: Message, i: number): HTMLElement {
    const body = h("div", { class: "body" });
    if (m.role === "assistant") renderMarkdown(body, m.content);
    else body.textContent = m.content;
    const el = h("div", { class: "msg " + m.role }, body);
    for (const c of m.tool_calls ?? []) el.append(toolCard(c));
    const last = i === conv.messages.length - 1;
    const actions = h("div", { class: "actions" });
    if (m.role === "assistant" && last) actions.append(h("button", { type: "button", class: "regenerate", onclick: regenerate }, "Regenerate"));
    if (m.role === "user" && (last || i === conv.messages.length - 2)) actions.append(h("button", { type: "button", class: "edit", onclick: editLast }, "Edit"));
    if (m.stats) actions.append(h("span", { class: "muted" }, m.stats));
    if (actions.childNodes.length) el.append(actions);
    return el;
  }

  function render(): void {
    log.textContent = "";
    conv.messages.forEach((m, i) => log.append(bubble(m, i)));
    renderList();
    byId(P + "stats").textContent = "";
    byId(P + "error").textContent = "";
  }

  /** Streams a reply to the conversation as it stands (its last message is the user's). */
  async function reply(): Promise<void> {
    byId(P + "error").textContent = "";
    const mine = conv;
    const out: Message = { role: "assistant", content: "" };
    const el = h("div", { class: "msg assistant pending" }, h("div", { class: "body" }, "…"));
    log.append(el);
    el.scrollIntoView({ block: "end" });
    const body = el.querySelector<HTMLElement>(".body")!;
    const sink = markdownSink(body);
    const meter = rateMeter(byId(P + "stats"));
    let tools: unknown[] | undefined;
    const toolsText = o.tools ? byId<HTMLTextAreaElement>(P + "tools").value.trim() : "";
    controller = new AbortController();
    busy(true);
    try {
      o.ready?.();
      if (toolsText) {
        try { tools = JSON.parse(toolsText); } catch (e) { throw new Error(`Tools: not valid JSON (${(e as Error).message})`); }
        if (!Array.isArray(tools)) throw new Error("Tools: give a JSON array of tool specs");
      }
      await o.engine.chat({
        messages: mine.messages, system: byId<HTMLTextAreaElement>(P + "system").value.trim() || undefined,
        temperature: Number(byId<HTMLInputElement>(P + "temperature").value), maxTokens: Number(byId<HTMLInputElement>(P + "max_tokens").value),
        tools, signal: controller.signal,
      }, {
        onText(d) { out.content += d; sink.set(out.content); meter.tick(); },
        onToolCalls(calls) {
          out.tool_calls = calls;
          for (const c of el.querySelectorAll(".tool-call")) c.remove();
          for (const c of calls) el.append(toolCard(c));
        },
        onUsage(n) { meter.show(n); },
      });
    } catch (e) {
      if ((e as Error).name !== "AbortError") byId(P + "error").textContent = (e as Error).message;
    } finally {
      controller = null;
      sink.flush();
    }
    // a stopped reply stays as far as it got, as the official demo keeps streamed text
    out.stats = byId(P + "stats").textContent ?? undefined;
    if (out.content || out.tool_calls?.length) mine.messages.push(out);
    let saveError = "";
    try { o.store.save(mine); } catch (e) { saveError = (e as Error).message; }
    busy(false);
    if (conv === mine) render();
    byId(P + "stats").textContent = out.stats ?? "";
    if (saveError) byId(P + "error").textContent = saveError;
  }

  function send(text: string): void {
    conv.messages.push({ role: "user", content: text });
    render();
    try { o.store.save(conv); } catch (e) { byId(P + "error").textContent = (e as Error).message; }
    void reply();
  }

  function regenerate(): void {
    if (controller || conv.messages.at(-1)?.role !== "assistant") return;
    conv.messages.pop();
    o.store.save(conv);
    render();
    void reply();
  }

  /** The last user message goes back into the box, with the reply after it; sending replaces them. */
  function editLast(): void {
    if (controller) return;
    const i = conv.messages.map((m) => m.role).lastIndexOf("user");
    if (i < 0) return;
    input.value = conv.messages[i].content;
    conv.messages.splice(i);
    o.store.save(conv);
    render();
    input.focus();
  }

  byId(P + "form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = "";
    send(text);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); byId<HTMLFormElement>(P + "form").requestSubmit(); }
  });
  byId(P + "stop").addEventListener("click", () => controller?.abort());
  byId(P + "reset").addEventListener("click", () => {
    controller?.abort();
    conv = o.store.create();
    render();
  });
  render();
}
