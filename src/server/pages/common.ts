/**
 * What both pages share, inlined into each (no external assets: the pages work offline and under a strict CSP):
 * the stylesheet and the client script that POSTs to the API and reads the SSE stream through fetch + a
 * ReadableStream reader.
 */
export const STYLE = `
:root { color-scheme: light dark; --fg: #1b1b1f; --bg: #fafafa; --muted: #6b6b76; --line: #d8d8de; --accent: #3b5bdb; --user: #e7ecff; --bot: #ffffff; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e6ea; --bg: #16161a; --muted: #9a9aa6; --line: #33333b; --accent: #7b93ff; --user: #23283d; --bot: #1e1e24; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 1rem; align-items: baseline; padding: .6rem 1rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.05rem; margin: 0; }
header nav { margin-left: auto; display: flex; gap: .8rem; }
a { color: var(--accent); }
main { max-width: 54rem; margin: 0 auto; padding: 1rem; }
textarea, input[type=text], input[type=password] { width: 100%; font: inherit; color: inherit; background: var(--bot); border: 1px solid var(--line); border-radius: 6px; padding: .5rem; }
button { font: inherit; padding: .4rem .9rem; border-radius: 6px; border: 1px solid var(--line); background: var(--bot); color: inherit; cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button:disabled { opacity: .45; cursor: default; }
.row { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; margin: .5rem 0; }
.muted { color: var(--muted); font-size: .88rem; }
.error { color: #d9480f; }
details { margin: .5rem 0; }
label.slider { display: grid; grid-template-columns: 9rem 1fr 3.5rem; gap: .5rem; align-items: center; }
pre, .msg { white-space: pre-wrap; word-wrap: break-word; }
`;

/** Client helpers: auth header from localStorage, POST with JSON errors surfaced, an SSE reader. */
export const CLIENT = `
const KEY = "xverse-api-key";
function apiHeaders() {
  const k = localStorage.getItem(KEY);
  return Object.assign({ "Content-Type": "application/json" }, k ? { Authorization: "Bearer " + k } : {});
}
async function postJson(path, body, signal) {
  const res = await fetch(path, { method: "POST", headers: apiHeaders(), body: JSON.stringify(body), signal });
  if (!res.ok) {
    let msg = "HTTP " + res.status;
    try { msg = (await res.json()).error.message; } catch (e) {}
    throw new Error(msg);
  }
  return res;
}
// Yields each SSE "data:" payload as parsed JSON until [DONE].
async function* readSse(res) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\\n\\n")) >= 0) {
      const event = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of event.split("\\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        const obj = JSON.parse(data);
        if (obj.error) throw new Error(obj.error.message);
        yield obj;
      }
    }
  }
}
// Tokens per second from the first token on (the wait before it is queueing + prefill, shown separately).
function rateMeter(el) {
  const t0 = performance.now();
  let first = 0, n = 0;
  return {
    tick() { if (!n++) first = performance.now(); this.show(); },
    show(total) {
      if (total !== undefined) n = total;
      const secs = (performance.now() - first) / 1000;
      const rate = n > 1 && secs > 0 ? ((n - 1) / secs).toFixed(1) : "–";
      const wait = first ? ((first - t0) / 1000).toFixed(2) + " s to first token · " : "";
      el.textContent = wait + n + " tokens · " + rate + " tok/s";
    },
  };
}
function setupKey() {
  const box = document.getElementById("apikey");
  if (!box) return;
  box.value = localStorage.getItem(KEY) || "";
  box.addEventListener("change", () => box.value ? localStorage.setItem(KEY, box.value) : localStorage.removeItem(KEY));
}
fetch("/v1/models", { headers: apiHeaders() }).then((r) => r.json()).then((j) => {
  const el = document.getElementById("model");
  if (el && j.data && j.data[0]) el.textContent = j.data[0].id + " · context " + j.data[0].max_model_len;
}).catch(() => {});
`;

export function page(title: string, body: string, script: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title><style>${STYLE}</style></head>
<body>
<header><h1>${title}</h1><span id="model" class="muted"></span>
<nav><a href="/">Chat</a><a href="/generate">Text generation</a></nav></header>
<main>${body}
<details><summary class="muted">API key</summary><input id="apikey" type="password" placeholder="only if the server was started with --api-key" autocomplete="off"></details>
</main>
<script>${CLIENT}
${script}
setupKey();</script>
</body></html>`;
}
