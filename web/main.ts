/**
 * The one front end: every page is the same shell (src/server/pages/shell.ts) and this bundle, which mounts the
 * page body[data-page] names — "chat" (/), "generate" (/generate) or "local" (/local, the model in this tab).
 */
import { byId, h } from "./dom.js";
import { apiHeaders, apiKeyBox, serverEngine } from "./engine.js";
import { mountChat } from "./chat-view.js";
import { mountGenerate } from "./generate-view.js";
import { mountLocal } from "./local-page.js";
import { ConversationStore } from "./store.js";

const TITLES: Record<string, string> = { chat: "XVERSE chat", generate: "XVERSE text generation", local: "XVERSE in this tab" };

function start(): void {
  const page = document.body.dataset.page ?? "chat";
  const onServer = document.body.dataset.static !== "1";
  document.body.textContent = "";
  const link = (href: string, text: string, here: boolean) => h("a", { href, ...(here ? { "aria-current": "page" } : {}) }, text);
  const main = h("main", { class: "page-" + page });
  document.body.append(
    h("header", {},
      h("h1", {}, TITLES[page] ?? "XVERSE"),
      h("span", { id: "model", class: "muted" }),
      onServer ? h("nav", {},
        link("/", "Chat", page === "chat"), link("/generate", "Text generation", page === "generate"), link("/local", "In this tab", page === "local")) : null),
    main);

  if (page === "local") {
    void mountLocal(main);
    return;
  }
  if (page === "generate") mountGenerate(main, { engine: serverEngine });
  else mountChat(main, { engine: serverEngine, store: new ConversationStore("xverse-conversations", "xverse-chat-history"), tools: true });
  main.append(h("details", { class: "apikey" }, h("summary", { class: "muted" }, "API key"),
    h("input", { id: "apikey", type: "password", placeholder: "only if the server was started with --api-key", autocomplete: "off" })));
  apiKeyBox(byId<HTMLInputElement>("apikey"));
  fetch("/v1/models", { headers: apiHeaders() }).then((r) => r.json()).then((j) => {
    const m = j.data?.[0];
    if (m) byId("model").textContent = `${m.id} · context ${m.max_model_len}`;
  }).catch(() => {});
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
