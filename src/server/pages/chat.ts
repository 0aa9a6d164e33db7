/**
 * GET /: the chat demo (the seed's chat_demo.py rebuilt): a conversation streamed from
 * /v1/chat/completions, history kept in the page (and localStorage, so a reload keeps it), a system prompt,
 * Stop (aborts the fetch; the server frees the slot) and Reset, tokens/s under each reply.
 */
import { page } from "./common.js";

const BODY = `
<details><summary class="muted">Settings</summary>
  <label class="muted">System prompt (sent first, when set)</label>
  <textarea id="system" rows="2"></textarea>
  <div class="row"><label class="muted">temperature <input id="temperature" type="number" min="0" max="2" step="0.05" value="0.5" style="width:5rem"></label>
  <label class="muted">max tokens <input id="max_tokens" type="number" min="1" max="8192" value="256" style="width:6rem"></label></div>
</details>
<div id="log" aria-live="polite"></div>
<div id="stats" class="muted"></div>
<div id="error" class="error"></div>
<form id="form">
  <textarea id="input" rows="3" placeholder="Type a message — Enter sends, Shift+Enter adds a line"></textarea>
  <div class="row">
    <button id="send" class="primary" type="submit">Send</button>
    <button id="stop" type="button" disabled>Stop</button>
    <button id="reset" type="button">Reset</button>
  </div>
</form>
<style>
#log { display: flex; flex-direction: column; gap: .6rem; margin-bottom: .6rem; }
.msg { padding: .5rem .75rem; border-radius: 8px; border: 1px solid var(--line); max-width: 90%; }
.msg.user { align-self: flex-end; background: var(--user); }
.msg.assistant { align-self: flex-start; background: var(--bot); }
.msg.tool { align-self: flex-start; font-family: ui-monospace, monospace; font-size: .85rem; }
</style>`;

const SCRIPT = `
const STORE = "xverse-chat-history";
const $ = (id) => document.getElementById(id);
let history = [];
let controller = null;
let epoch = 0; // bumped by Reset, so a reply still streaming then is not written into the new history
try { history = JSON.parse(localStorage.getItem(STORE) || "[]"); } catch (e) { history = []; }

function bubble(role, text) {
  const d = document.createElement("div");
  d.className = "msg " + role;
  d.textContent = text;
  $("log").appendChild(d);
  d.scrollIntoView({ block: "end" });
  return d;
}
function render() {
  $("log").textContent = "";
  for (const m of history) bubble(m.role, m.content);
}
function save() { localStorage.setItem(STORE, JSON.stringify(history)); }
function busy(on) {
  $("send").disabled = on;
  $("stop").disabled = !on;
}

async function send(text) {
  const mine = epoch;
  $("error").textContent = "";
  history.push({ role: "user", content: text });
  save();
  bubble("user", text);
  const out = bubble("assistant", "…");
  const meter = rateMeter($("stats"));
  const messages = [];
  const sys = $("system").value.trim();
  if (sys) messages.push({ role: "system", content: sys });
  messages.push(...history);
  const temperature = Number($("temperature").value);
  controller = new AbortController();
  busy(true);
  let reply = "";
  try {
    const res = await postJson("/v1/chat/completions", {
      messages, stream: true, stream_options: { include_usage: true },
      temperature, max_tokens: Number($("max_tokens").value),
    }, controller.signal);
    out.textContent = "";
    for await (const chunk of readSse(res)) {
      if (chunk.usage) { meter.show(chunk.usage.completion_tokens); continue; }
      const delta = chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) {
        reply += delta.content;
        out.textContent = reply;
        meter.tick();
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") $("error").textContent = e.message;
  } finally {
    controller = null;
    busy(false);
  }
  if (mine !== epoch) return;
  if (!reply && !out.textContent.trim()) out.textContent = "(no reply)";
  // a stopped reply stays in the history as far as it got, as the official demo keeps streamed text
  history.push({ role: "assistant", content: reply });
  save();
}

$("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("form").requestSubmit(); }
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("reset").addEventListener("click", () => {
  epoch++;
  if (controller) controller.abort();
  history = [];
  save();
  render();
  $("stats").textContent = "";
  $("error").textContent = "";
});
render();
`;

export const CHAT_PAGE = page("XVERSE chat", BODY, SCRIPT);
