/**
 * Model output is untrusted: Markdown is rendered by marked, then DOMPurify removes anything that can run
 * (script, event handlers, javascript: URLs) before it reaches the page. Code blocks get a copy button.
 * Re-rendering the whole message per streamed delta is fine at chat sizes (coalesced to one per frame).
 */
import DOMPurify from "dompurify";
import { Marked } from "marked";
import { h } from "./dom.js";

const marked = new Marked({ gfm: true, breaks: true, async: false });

// links open outside the page and cannot reach back to it
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

export function sanitizeHtml(html: string): string {
  return DOMPurify.sanitize(html, {
    FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed"],
    FORBID_ATTR: ["style"],
  });
}

export function renderMarkdown(el: HTMLElement, text: string): void {
  el.innerHTML = sanitizeHtml(marked.parse(text) as string);
  for (const pre of el.querySelectorAll("pre")) addCopyButton(pre);
}

/** The button sits on a wrapper, not in the <pre>, so it stays put while a long line scrolls sideways. */
function addCopyButton(pre: HTMLPreElement): void {
  const code = pre.querySelector("code") ?? pre;
  const btn = h("button", { type: "button", class: "copy", title: "Copy the code" }, "Copy");
  btn.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(code.textContent ?? "");
      btn.textContent = "Copied";
    } catch {
      btn.textContent = "Copy failed";
    }
    setTimeout(() => { btn.textContent = "Copy"; }, 1500);
  });
  const wrap = h("div", { class: "code-block" });
  pre.replaceWith(wrap);
  wrap.append(btn, pre);
}

/** Re-renders at most once per animation frame, whatever the rate of deltas. */
export function markdownSink(el: HTMLElement): { set(text: string): void; flush(): void } {
  let pending: string | null = null, frame = 0;
  const flush = () => {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    if (pending !== null) renderMarkdown(el, pending);
    pending = null;
  };
  return {
    set(text) {
      pending = text;
      if (!frame) frame = requestAnimationFrame(flush);
    },
    flush,
  };
}
