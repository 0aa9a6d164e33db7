/**
 * The text-generation view (the seed's text_generation_demo.py): a prompt and four sliders — max_new_tokens
 * 1–512, temperature 0–1 (0 = greedy), top_k 0–50 (0 = no cut), top_p 0–1 — streaming a continuation, with
 * Stop, Reset and a history of runs (click one to restore it). Used by /generate (server) and /local (in tab).
 * #output gets data-done="1" when a run ends, which tests and scripts wait for.
 */
import { byId, h, rateMeter } from "./dom.js";
import type { Engine } from "./engine.js";

export interface GenerateViewOptions {
  engine: Engine;
  ready?: () => void;
  /** Values to start with (a page's URL parameters). */
  initial?: { prompt?: string; maxTokens?: number; temperature?: number };
}

export interface GenerateView {
  /** Runs once with the current settings; resolves when it ends. */
  run(): Promise<void>;
}

const slider = (id: string, min: number, max: number, step: number, value: number) =>
  h("label", { class: "slider" }, h("span", {}, id),
    h("input", { id, type: "range", min, max, step, value: String(value) }),
    h("output", { id: id + "_value" }, String(value)));

export function mountGenerate(root: HTMLElement, o: GenerateViewOptions): GenerateView {
  const init = o.initial ?? {};
  const maxTokens = Math.min(512, Math.max(1, init.maxTokens ?? 128));
  root.append(h("div", { class: "generate" },
    h("textarea", { id: "prompt", rows: 5, placeholder: "Type the beginning of a text; the model continues it" }, init.prompt ?? "Once upon a time"),
    slider("max_new_tokens", 1, 512, 1, maxTokens),
    slider("temperature", 0, 1, 0.01, init.temperature ?? 1),
    slider("top_k", 0, 50, 1, 50),
    slider("top_p", 0, 1, 0.01, 0.92),
    h("div", { class: "row" },
      h("button", { id: "generate", class: "primary", type: "button" }, "Generate"),
      h("button", { id: "stop", type: "button", disabled: true }, "Stop"),
      h("button", { id: "reset", type: "button" }, "Reset")),
    h("div", { id: "stats", class: "muted" }),
    h("div", { id: "error", class: "error" }),
    h("pre", { id: "output" }),
    h("h2", { class: "muted" }, "History"),
    h("ol", { id: "history", class: "muted" })));

  const SLIDERS = ["max_new_tokens", "temperature", "top_k", "top_p"];
  for (const id of SLIDERS) {
    const input = byId<HTMLInputElement>(id), out = byId(id + "_value");
    input.addEventListener("input", () => { out.textContent = input.value; });
  }
  const num = (id: string) => Number(byId<HTMLInputElement>(id).value);
  const params = () => ({ maxTokens: num("max_new_tokens"), temperature: num("temperature"), topK: num("top_k"), topP: num("top_p") });
  let controller: AbortController | null = null;
  const busy = (on: boolean) => {
    byId<HTMLButtonElement>("generate").disabled = on;
    byId<HTMLButtonElement>("stop").disabled = !on;
  };
  const show = (prompt: string, text: string) => {
    const out = byId("output");
    out.textContent = "";
    out.append(h("b", {}, prompt), document.createTextNode(text));
  };
  const addRun = (prompt: string, text: string) => {
    const li = h("li", { title: "restore this run" }, prompt.slice(0, 60) + " → " + text.slice(0, 60).replace(/\s+/g, " ") + "…");
    li.addEventListener("click", () => { byId<HTMLTextAreaElement>("prompt").value = prompt; show(prompt, text); });
    byId("history").prepend(li);
  };

  async function run(): Promise<void> {
    const prompt = byId<HTMLTextAreaElement>("prompt").value;
    if (!prompt || controller) return;
    const out = byId("output");
    out.dataset.done = "0";
    byId("error").textContent = "";
    const meter = rateMeter(byId("stats"));
    controller = new AbortController();
    busy(true);
    let text = "";
    show(prompt, "");
    try {
      o.ready?.();
      await o.engine.complete({ prompt, ...params(), signal: controller.signal }, {
        onText(d) { text += d; show(prompt, text); meter.tick(); },
        onUsage(n) { meter.show(n); },
      });
    } catch (e) {
      if ((e as Error).name !== "AbortError") byId("error").textContent = (e as Error).message;
    } finally {
      controller = null;
      busy(false);
    }
    addRun(prompt, text);
    out.dataset.done = "1";
  }

  byId("generate").addEventListener("click", () => void run());
  byId("stop").addEventListener("click", () => controller?.abort());
  byId("reset").addEventListener("click", () => {
    controller?.abort();
    byId("history").textContent = "";
    byId("output").textContent = "";
    byId("stats").textContent = "";
    byId("error").textContent = "";
  });
  return { run };
}
