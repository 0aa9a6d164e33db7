/**
 * The front end's rendering in headless Chromium, with the chat API's stream replaced by a fixed one (so what
 * the reply holds is known): Markdown and code blocks render, the copy button copies the code, a reply holding
 * <img onerror>, <script> and a javascript: link runs nothing, tool calls show as collapsed cards that open,
 * everything survives a reload; the pages follow the system's light/dark setting and hold at 390 px width.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import type { RunningServer } from "../../src/server/http.js";
import { startTestServer } from "../server/helpers.js";
import { launch, openPage, skip } from "./chromium.js";

declare const document: any, window: any, navigator: any, getComputedStyle: any; // eslint-disable-line @typescript-eslint/no-explicit-any

const REPLY = [
  "# Title\n\nSome **bold** text and `inline code`.\n\n",
  "```js\nconsole.log(\"a very long line that must scroll inside its block and never widen the page at phone width\");\n```\n\n",
  "<img src=x onerror=\"window.__xss = 'img'\"><script>window.__xss = 'script'</script>",
  "[click](javascript:window.__xss='link') <b onmouseover=\"window.__xss='hover'\">hover</b>",
];
const sse = (chunks: object[]) => chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("") + "data: [DONE]\n\n";
const chunk = (delta: object, finish: string | null = null) => ({ id: "x", object: "chat.completion.chunk", created: 0, model: "m", choices: [{ index: 0, delta, finish_reason: finish }] });
const STREAM = sse([
  chunk({ role: "assistant", content: "" }),
  ...REPLY.map((content) => chunk({ content })),
  chunk({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "{\"city\":\"Paris\",\"days\":2}" } }] }),
  chunk({}, "tool_calls"),
]);

describe("front end rendering in Chromium", { skip }, () => {
  let srv: RunningServer;
  let browser: Browser;
  before(async () => {
    srv = await startTestServer({ concurrency: 1 });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  async function chatWithFixedReply(o: { viewport?: { width: number; height: number } } = {}): Promise<{ page: Page; errors: string[] }> {
    const { page, errors } = await openPage(browser, srv.url + "/", o);
    await page.route("**/v1/chat/completions", (route) => route.fulfill({ status: 200, contentType: "text/event-stream", body: STREAM }));
    // the <img src=x> in the reply must not even be fetched as an image with a handler: it is fetched (harmlessly) or not at all
    await page.fill("#input", "Show me markdown");
    await page.click("#send");
    await page.waitForFunction(() => !document.getElementById("send").disabled && document.querySelectorAll(".msg.assistant:not(.pending)").length === 1);
    return { page, errors };
  }

  it("Markdown, code blocks with copy, tool-call cards; untrusted HTML runs nothing; all of it after a reload", async () => {
    const { page, errors } = await chatWithFixedReply();
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: srv.url });
    const body = ".msg.assistant .body";
    const check = async () => {
      assert.equal(await page.textContent(`${body} h1`), "Title");
      assert.equal(await page.textContent(`${body} strong`), "bold");
      assert.equal(await page.textContent(`${body} p code`), "inline code");
      assert.match((await page.textContent(`${body} pre code`))!, /^console\.log\("a very long line/);
      assert.equal(await page.locator(`${body} .code-block button.copy`).count(), 1);
      // nothing executable reached the DOM
      assert.equal(await page.locator("#log script").count(), 0);
      assert.equal(await page.locator("#log [onerror], #log [onmouseover], #log [onclick]").count(), 0);
      assert.equal(await page.locator('#log a[href^="javascript:"]').count(), 0);
      // the tool call: a card, collapsed, naming the tool; opening it shows the arguments
      const card = page.locator(".msg.assistant details.tool-call");
      assert.equal(await card.count(), 1);
      assert.equal(await card.getAttribute("open"), null);
      assert.match((await card.locator("summary").textContent())!, /get_weather/);
      await card.locator("summary").click();
      assert.notEqual(await card.getAttribute("open"), null);
      assert.match((await card.locator("pre").innerText()), /"city": "Paris",\s+"days": 2/);
    };
    await check();
    await page.hover(`${body} b`);
    await page.waitForTimeout(200);
    assert.equal(await page.evaluate(() => window.__xss), undefined, "no handler or script ran");

    // copy: the button puts the code (not the button's label) on the clipboard
    await page.click(`${body} .code-block button.copy`);
    await page.waitForFunction(() => document.querySelector(".msg.assistant .code-block button.copy").textContent === "Copied");
    assert.match(await page.evaluate(() => navigator.clipboard.readText()), /^console\.log\("a very long line.*\);\n?$/);

    await page.reload();
    await check();
    assert.equal(await page.evaluate(() => window.__xss), undefined);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  it("390 px wide: no page-wide horizontal scroll on /, /generate and /local, with a long code line shown", async () => {
    const phone = { width: 390, height: 844 };
    const { page, errors } = await chatWithFixedReply({ viewport: phone });
    const width = () => page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(await width() <= 390, `/: ${await width()} px`);
    // the code block scrolls inside itself instead
    assert.ok(await page.evaluate(() => { const p = document.querySelector(".msg pre"); return p.scrollWidth > p.clientWidth; }));
    await page.context().close();
    for (const path of ["/generate", "/local"]) {
      const { page: p, errors: e } = await openPage(browser, srv.url + path, { viewport: phone, noWebGpu: true });
      if (path === "/local") await p.waitForSelector("#model-status[data-ready='1']");
      const w = await p.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(w <= 390, `${path}: ${w} px`);
      assert.deepEqual(e, []);
      await p.context().close();
    }
    assert.deepEqual(errors, []);
  });

  it("light and dark follow the system setting", async () => {
    const bg: Record<string, string> = {};
    for (const scheme of ["light", "dark"] as const) {
      const { page } = await openPage(browser, srv.url + "/generate", { colorScheme: scheme });
      bg[scheme] = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      await page.context().close();
    }
    assert.equal(bg.light, "rgb(250, 250, 250)");
    assert.equal(bg.dark, "rgb(22, 22, 26)");
  });
});
