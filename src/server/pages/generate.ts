/**
 * GET /generate: the text-generation demo (the seed's text_generation_demo.py rebuilt): a prompt box and the
 * seed's four sliders — max_new_tokens 1–512, temperature 0–1, top_k 0–50, top_p 0–1 — streaming a base-model
 * continuation from /v1/completions, with Stop, Reset and a history of earlier runs (click one to restore it).
 * temperature 0 means greedy; top_k 0 means no top-k cut.
 */
import { page } from "./common.js";

const slider = (id: string, label: string, min: number, max: number, step: number, value: number) =>
  `<label class="slider"><span>${label}</span><input id="${id}" type="range" min="${min}" max="${max}" step="${step}" value="${value}"><output id="${id}_value">${value}</output></label>`;

const BODY = `
<textarea id="prompt" rows="5" placeholder="Type the beginning of a text; the model continues it">Once upon a time</textarea>
${slider("max_new_tokens", "max_new_tokens", 1, 512, 1, 128)}
${slider("temperature", "temperature", 0, 1, 0.01, 1)}
${slider("top_k", "top_k", 0, 50, 1, 50)}
${slider("top_p", "top_p", 0, 1, 0.01, 0.92)}
<div class="row">
  <button id="generate" class="primary" type="button">Generate</button>
  <button id="stop" type="button" disabled>Stop</button>
  <button id="reset" type="button">Reset</button>
</div>
<div id="stats" class="muted"></div>
<div id="error" class="error"></div>
<pre id="output"></pre>
<h2 class="muted" style="font-size:.95rem">History</h2>
<ol id="history" class="muted"></ol>
<style>
#output { min-height: 6rem; padding: .6rem; border: 1px solid var(--line); border-radius: 6px; background: var(--bot); font: inherit; }
#output b { font-weight: 600; }
#history li { cursor: pointer; margin: .2rem 0; }
</style>`;

const SCRIPT = `
const $ = (id) => document.getElementById(id);
const SLIDERS = ["max_new_tokens", "temperature", "top_k", "top_p"];
const runs = [];
let controller = null;
for (const id of SLIDERS) {
  const input = $(id), out = $(id + "_value");
  input.addEventListener("input", () => { out.textContent = input.value; });
}
function params() {
  return {
    max_tokens: Number($("max_new_tokens").value),
    temperature: Number($("temperature").value),
    top_k: Number($("top_k").value),
    top_p: Number($("top_p").value),
  };
}
function busy(on) { $("generate").disabled = on; $("stop").disabled = !on; }
function show(prompt, text) {
  const out = $("output");
  out.textContent = "";
  const b = document.createElement("b");
  b.textContent = prompt;
  out.append(b, document.createTextNode(text));
}
function addRun(run) {
  runs.unshift(run);
  const li = document.createElement("li");
  li.textContent = run.prompt.slice(0, 60) + " → " + run.text.slice(0, 60).replace(/\\s+/g, " ") + "…";
  li.title = "restore this run";
  li.addEventListener("click", () => { $("prompt").value = run.prompt; show(run.prompt, run.text); });
  $("history").prepend(li);
}
$("generate").addEventListener("click", async () => {
  const prompt = $("prompt").value;
  if (!prompt || controller) return;
  $("error").textContent = "";
  const meter = rateMeter($("stats"));
  controller = new AbortController();
  busy(true);
  let text = "";
  show(prompt, "");
  try {
    const res = await postJson("/v1/completions", Object.assign({ prompt, stream: true, stream_options: { include_usage: true } }, params()), controller.signal);
    for await (const chunk of readSse(res)) {
      if (chunk.usage) { meter.show(chunk.usage.completion_tokens); continue; }
      const c = chunk.choices[0];
      if (c && c.text) { text += c.text; show(prompt, text); meter.tick(); }
    }
  } catch (e) {
    if (e.name !== "AbortError") $("error").textContent = e.message;
  } finally {
    controller = null;
    busy(false);
  }
  addRun(Object.assign({ prompt, text }, params()));
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("reset").addEventListener("click", () => {
  if (controller) controller.abort();
  runs.length = 0;
  $("history").textContent = "";
  $("output").textContent = "";
  $("stats").textContent = "";
  $("error").textContent = "";
});
`;

export const GENERATE_PAGE = page("XVERSE text generation", BODY, SCRIPT);
