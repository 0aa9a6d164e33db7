/** A tiny element builder: text children are text nodes, never HTML, so nothing a string holds is parsed. */
type Child = Node | string | number | null | undefined | false;
type Props = { [k: string]: string | number | boolean | ((ev: Event) => void) | undefined };

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") el.addEventListener(k.replace(/^on/, ""), v);
    else if (k === "class") el.className = String(v);
    else if (k in el && k !== "list") (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(typeof c === "number" ? String(c) : c);
  return el;
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no #${id} on this page`);
  return el as T;
}

/** Lets the browser paint and handle clicks (Stop) between tokens; faster than setTimeout's 4 ms clamp. */
const channel = new MessageChannel();
const waiting: (() => void)[] = [];
channel.port1.onmessage = () => waiting.shift()?.();
export function nextTask(): Promise<void> {
  return new Promise((r) => { waiting.push(r); channel.port2.postMessage(0); });
}

/** Tokens per second from the first token on; the wait before it (prefill, queueing) is shown apart. */
export function rateMeter(el: HTMLElement) {
  const t0 = performance.now();
  let first = 0, n = 0;
  const m = {
    tokens: () => n,
    rate(): number { const s = (performance.now() - first) / 1000; return n > 1 && s > 0 ? (n - 1) / s : 0; },
    tick() { if (!n++) first = performance.now(); m.show(); },
    show(total?: number) {
      if (total !== undefined) n = total;
      const r = m.rate();
      const wait = first ? ((first - t0) / 1000).toFixed(2) + " s to first token · " : "";
      el.textContent = `${wait}${n} tokens · ${r ? r.toFixed(1) : "–"} tok/s`;
      el.dataset.tokensPerSecond = r ? r.toFixed(2) : "";
    },
  };
  return m;
}
