/**
 * /local: the model runs in this tab. stories260K (served next to the page) loads by default; a GGUF, or a
 * safetensors file with its config.json and tokenizer.json, can be picked from disk instead. The backend is
 * chosen by src/browser/backend.ts (WebGPU when it starts, else TypeScript) and said on the page; a model switch
 * ends the old model's runs, frees its GPU buffers and starts a fresh WebGPU device.
 * URL parameters for scripts and tests: ?autorun=1&prompt=…&max_tokens=N&greedy=1 runs text generation once
 * the model is loaded; #output gets data-done="1" when it ends. #model-status carries data-model, data-ready and
 * data-formats (the weights' formats, e.g. "q8_0:32 f16:5"). ?backend=ts forces the TypeScript backend;
 * ?model=URL loads another model directory (model.safetensors + JSON files) over HTTP, from the page's origin
 * (the CSP allows no other). If the model cannot load, autorun sets data-done="error".
 */
import type { Backend } from "../src/backend/backend.js";
import { pickBackend, type PickedBackend } from "../src/browser/backend.js";
import { blobReader } from "../src/io/byte-reader.js";
import { disposeModel, loadModelFiles, modelFilesAt, modelFilesFrom, type ModelFiles } from "../src/browser/load.js";
import { byId, h } from "./dom.js";
import { mountChat } from "./chat-view.js";
import { mountGenerate } from "./generate-view.js";
import { LocalEngine } from "./local-engine.js";
import { ConversationStore } from "./store.js";
import { webGpuFactory } from "./webgpu.js";

export async function mountLocal(main: HTMLElement): Promise<void> {
  const q = new URLSearchParams(location.search);
  const engine = new LocalEngine();
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
  let picked: PickedBackend;
  const backendOptions = { gpu: (navigator as Navigator & { gpu?: unknown }).gpu, webgpu: webGpuFactory, prefer: q.get("backend") === "ts" ? "ts" as const : undefined };
  try {
    picked = await pickBackend(backendOptions);
  } catch (e) {
    status.textContent = `Could not start a backend: ${(e as Error).message}`;
    return;
  }
  const backendLine = byId("backend");
  const showBackend = () => {
    backendLine.textContent = `Backend: ${picked.kind === "webgpu" ? "WebGPU" : "TypeScript"} — ${picked.reason}`;
    backendLine.dataset.backend = picked.kind;
  };
  showBackend();

  // Switching models: runs on the old one end (as Stop), its weights' GPU buffers are destroyed, and a WebGPU
  // backend is replaced by a fresh device, which takes the old one's KV cache and every other buffer with it.
  let used = false;
  const freeBackend = async () => {
    const old = await engine.release();
    if (old) disposeModel(old);
    if (!used || picked.kind !== "webgpu") return;
    (picked.backend as Backend & { destroy?: () => void }).destroy?.();
    picked = await pickBackend(backendOptions);
    showBackend();
  };

  const load = async (files: ModelFiles) => {
    const name = files.weights.name.replace(/^.*\//, "");
    status.textContent = `Loading ${name}…`;
    status.dataset.ready = "0";
    delete status.dataset.formats;
    const progress = byId<HTMLProgressElement>("progress");
    const t0 = performance.now();
    try {
      await freeBackend();
      used = true;
      const m = await loadModelFiles(files, { backend: picked.backend, onProgress: (d, t) => { progress.value = t ? d / t : 1; } });
      engine.model = m;
      const c = m.config;
      // e.g. "q8_0:32 f16:5": the matrices' formats as the backend holds them (GGUF blocks stay blocks)
      const formats = Object.entries(m.formats).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
      status.textContent = `${name} (${m.format}): ${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${(m.bytes / 2 ** 20).toFixed(1)} MiB of weights (${formats.map(([f, n]) => `${f} ×${n}`).join(", ")}), loaded in ${((performance.now() - t0) / 1000).toFixed(2)} s`;
      status.dataset.formats = formats.map(([f, n]) => `${f}:${n}`).join(" ");
      status.dataset.ready = "1";
      status.dataset.model = name;
    } catch (e) {
      status.textContent = `Could not load ${name}: ${(e as Error).message}`;
      status.dataset.ready = "error";
    }
  };

  byId<HTMLInputElement>("model-file").addEventListener("change", async (ev) => {
    const list = [...((ev.target as HTMLInputElement).files ?? [])];
    if (!list.length) return;
    try {
      await load(modelFilesFrom(list.map((f) => blobReader(f, f.name))));
    } catch (e) {
      status.textContent = (e as Error).message;
      status.dataset.ready = "error";
    }
  });

  try {
    await load(await modelFilesAt(new URL(q.get("model") ?? "models/stories260K/", location.href).href));
  } catch (e) {
    status.textContent = `Could not load the default model: ${(e as Error).message}`;
    status.dataset.ready = "error";
  }
  if (q.get("autorun") === "1") {
    // a script waiting for data-done learns at once that nothing will run
    if (engine.model) await gen.run();
    else byId("output").dataset.done = "error";
  }
}
