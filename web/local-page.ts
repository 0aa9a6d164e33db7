/**
 * /local: the model runs in the browser, in a Web Worker (local-worker.ts) so that a large model does not freeze
 * the page, whose main thread only renders; in the tab itself where no module worker starts, or with ?worker=0.
 * stories260K (served next to the page) loads by default; a GGUF, or a safetensors file with its config.json and
 * tokenizer.json, can be picked from disk instead. The backend is chosen by src/browser/backend.ts (WebGPU when it
 * starts, else TypeScript) and said on the page (#backend: data-backend, data-where "worker" or "tab"); a model
 * switch ends the old model's runs, frees its GPU buffers and starts a fresh WebGPU device (local-host.ts).
 * URL parameters for scripts and tests: ?autorun=1&prompt=…&max_tokens=N&greedy=1 runs text generation once
 * the model is loaded; #output gets data-done="1" when it ends. #model-status carries data-model, data-ready and
 * data-formats (the weights' formats, e.g. "q8_0:32 f16:5"). ?backend=ts forces the TypeScript backend;
 * ?model=URL loads another model directory (model.safetensors + JSON files) over HTTP, from the page's origin
 * (the CSP allows no other). If the model cannot load, autorun sets data-done="error".
 */
import { byId, h } from "./dom.js";
import type { Engine } from "./engine.js";
import { mountChat } from "./chat-view.js";
import { mountGenerate } from "./generate-view.js";
import { LocalHost, type BackendInfo, type Host, type ModelSource, type StartOptions } from "./local-host.js";
import { ConversationStore } from "./store.js";
import { WorkerHost } from "./worker-host.js";

/** The model worker (dist/web/local-worker.js, next to this bundle); the tab itself when it cannot start. */
async function startHost(o: StartOptions, useWorker: boolean): Promise<{ host: Host; backend: BackendInfo; note: string }> {
  if (useWorker && typeof Worker === "function") {
    let host: WorkerHost | undefined;
    try {
      host = new WorkerHost(new URL("./local-worker.js", import.meta.url));
      return { host, backend: await host.start(o), note: "" };
    } catch (e) {
      host?.terminate();
      const host2 = new LocalHost("tab");
      return { host: host2, backend: await host2.start(o), note: ` (in the page: ${(e as Error).message})` };
    }
  }
  const host = new LocalHost("tab");
  return { host, backend: await host.start(o), note: "" };
}

export async function mountLocal(main: HTMLElement): Promise<void> {
  const q = new URLSearchParams(location.search);
  // the views talk to the host's engine, which exists once the host has started
  let host: Host | null = null;
  const engine: Engine = {
    chat: (req, ev) => host ? host.engine.chat(req, ev) : Promise.reject(new Error("The model is still loading: wait for it (the status line above says when it is ready)")),
    complete: (req, ev) => host ? host.engine.complete(req, ev) : Promise.reject(new Error("The model is still loading: wait for it (the status line above says when it is ready)")),
  };
  main.append(
    h("section", { class: "model-panel" },
      h("div", { id: "model-status" }, "Loading…"),
      h("div", { id: "backend", class: "muted" }, "Backend: choosing…"),
      h("progress", { id: "progress", max: 1, value: 0 }),
      h("label", { class: "muted", for: "model-file" }, "Run another model from disk: one .gguf, or a .safetensors with its config.json and tokenizer.json (select them together)"),
      h("input", { id: "model-file", type: "file", multiple: true, accept: ".gguf,.safetensors,.json" })),
    h("nav", { class: "tabs", role: "tablist" },
      h("button", { id: "tab-generate", type: "button", role: "tab", class: "tab" }, "Text generation"),
      h("button", { id: "tab-chat", type: "button", role: "tab", class: "tab" }, "Chat")),
    h("div", { id: "panel-generate" }),
    h("div", { id: "panel-chat", hidden: true }));

  const tab = (which: "generate" | "chat") => {
    byId("panel-generate").hidden = which !== "generate";
    byId("panel-chat").hidden = which !== "chat";
    byId("tab-generate").setAttribute("aria-selected", String(which === "generate"));
    byId("tab-chat").setAttribute("aria-selected", String(which === "chat"));
  };
  byId("tab-generate").addEventListener("click", () => tab("generate"));
  byId("tab-chat").addEventListener("click", () => tab("chat"));
  tab(q.get("tab") === "chat" ? "chat" : "generate");

  const greedy = q.get("greedy") === "1";
  const gen = mountGenerate(byId("panel-generate"), {
    engine,
    initial: { prompt: q.get("prompt") ?? undefined, maxTokens: q.has("max_tokens") ? Number(q.get("max_tokens")) : undefined, temperature: greedy ? 0 : undefined },
  });
  mountChat(byId("panel-chat"), { engine, store: new ConversationStore("xverse-conversations-local"), prefix: "chat-", tools: true });

  const status = byId("model-status");
  const backendLine = byId("backend");
  let started: Awaited<ReturnType<typeof startHost>>;
  try {
    started = await startHost({ gpu: Boolean((navigator as Navigator & { gpu?: unknown }).gpu), prefer: q.get("backend") === "ts" ? "ts" : undefined }, q.get("worker") !== "0");
  } catch (e) {
    status.textContent = `Could not start a backend: ${(e as Error).message}`;
    return;
  }
  host = started.host;
  const showBackend = (b: BackendInfo) => {
    backendLine.textContent = `Backend: ${b.kind === "webgpu" ? "WebGPU" : "TypeScript"} — ${b.reason}${host!.where === "worker" ? " · in a Web Worker" : started.note}`;
    backendLine.dataset.backend = b.kind;
    backendLine.dataset.where = host!.where;
  };
  showBackend(started.backend);

  let ready = false;
  // only the latest load speaks on the status line (an earlier one still finishing says nothing)
  let latest = 0;
  const load = async (src: ModelSource, name: string) => {
    const mine = ++latest;
    ready = false;
    status.textContent = `Loading ${name}…`;
    status.dataset.ready = "0";
    delete status.dataset.formats;
    const progress = byId<HTMLProgressElement>("progress");
    const t0 = performance.now();
    try {
      const { model: m, backend } = await host!.load(src, (d, t) => { if (mine === latest) progress.value = t ? d / t : 1; });
      showBackend(backend);
      if (mine !== latest) return;
      // e.g. "q8_0:32 f16:5": the matrices' formats as the backend holds them (GGUF blocks stay blocks)
      const formats = Object.entries(m.formats).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      status.textContent = `${m.name} (${m.format}): ${m.layers} layers, hidden ${m.hidden}, vocab ${m.vocab}, ${(m.bytes / 2 ** 20).toFixed(1)} MiB of weights (${formats.map(([f, n]) => `${f} ×${n}`).join(", ")}), loaded in ${((performance.now() - t0) / 1000).toFixed(2)} s`;
      status.dataset.formats = formats.map(([f, n]) => `${f}:${n}`).join(" ");
      status.dataset.ready = "1";
      status.dataset.model = m.name;
      ready = true;
    } catch (e) {
      if (mine !== latest) return;
      status.textContent = `Could not load ${name}: ${(e as Error).message}`;
      status.dataset.ready = "error";
    }
  };

  byId<HTMLInputElement>("model-file").addEventListener("change", async (ev) => {
    const list = [...((ev.target as HTMLInputElement).files ?? [])];
    if (!list.length) return;
    const weights = list.find((f) => /\.(gguf|safetensors)$/i.test(f.name)) ?? list[0];
    await load({ files: list }, weights.name);
  });

  await load({ url: new URL(q.get("model") ?? "models/stories260K/", location.href).href }, "the default model");
  if (q.get("autorun") === "1") {
    // a script waiting for data-done learns at once that nothing will run
    if (ready) await gen.run();
    else byId("output").dataset.done = "error";
  }
}
