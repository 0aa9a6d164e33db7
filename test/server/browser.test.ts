/**
 * The server's pages in headless Debian Chromium (playwright-core, executablePath /usr/bin/chromium), against the
 * real model: the chat page streams a reply, keeps history for a second turn and across a reload, regenerates
 * the last reply, edits the last message, stops, starts a new chat and switches back through the list; on the
 * generation page, moving a slider changes the request that is sent. Skipped, saying why, when
 * /usr/bin/chromium is not installed. (Rendering — Markdown, sanitizing, tool cards, layout — is in
 * test/browser/frontend.test.ts.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Browser, Page } from "playwright-core";
import type { RunningServer } from "../../src/server/http.js";
import { raw, startTestServer } from "./helpers.js";
import { launch, skip } from "../browser/chromium.js";

// Functions passed to page.evaluate run in the browser (strings would be eval, which the pages' CSP forbids);
// this project compiles without the DOM types, so the browser globals they use are declared loosely here.
declare const document: any, window: any, MutationObserver: any; // eslint-disable-line @typescript-eslint/no-explicit-any
const chatIdle = (replies: number) => !document.getElementById("send").disabled && document.querySelectorAll(".msg.assistant:not(.pending)").length === replies;

describe("web pages in Chromium", { skip }, () => {
  let srv: RunningServer;
  let browser: Browser;
  before(async () => {
    srv = await startTestServer({ concurrency: 2 });
    browser = await launch();
  });
  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  async function newPage(path: string): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    // any request that leaves the server is an external asset, which the pages must not have
    page.on("request", (r) => { if (!r.url().startsWith(srv.url)) errors.push(`external request: ${r.url()}`); });
    await page.goto(srv.url + path);
    return { page, errors };
  }

  it("chat: a streamed reply, a second turn with history, reload, regenerate, edit, stop, new chat, the list", async () => {
    const { page, errors } = await newPage("/");
    const bodies: { messages: { role: string; content: string }[]; stream: boolean }[] = [];
    page.on("request", (r) => { if (r.url().endsWith("/v1/chat/completions")) bodies.push(r.postDataJSON()); });
    // record the reply bubble's text as it changes: a streamed reply shows up piece by piece. The network is
    // slowed a little (Chromium's emulation) so the tiny, fast model's reply cannot arrive in one read.
    await page.evaluate(() => {
      window.seen = [];
      new MutationObserver(() => {
        // innerText: as shown (Markdown line breaks are <br>, which textContent drops)
        const b = document.querySelector(".msg.assistant .body");
        if (b && b.innerText !== "…" && b.innerText !== window.seen[window.seen.length - 1]) window.seen.push(b.innerText);
      }).observe(document.getElementById("log"), { subtree: true, childList: true, characterData: true });
    });
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: 64 * 1024, uploadThroughput: -1 });
    await page.fill("#input", "Hello, who are you?");
    await page.click("#send");
    await page.waitForFunction(chatIdle, 1);
    const first = await page.innerText(".msg.assistant .body");
    assert.ok(first && first.trim().length > 0 && first !== "…", `reply: ${first}`);
    assert.match((await page.textContent("#stats"))!, /tokens · [\d.–]+ tok\/s/);
    assert.equal(bodies[0].stream, true);
    assert.deepEqual(bodies[0].messages, [{ role: "user", content: "Hello, who are you?" }]);
    const seen: string[] = await page.evaluate(() => window.seen);
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    const growing = seen.filter((t) => t.length > 0);
    assert.ok(growing.length >= 3, `the reply appeared in ${growing.length} steps`);
    assert.equal(growing.at(-1)!.trim(), first.trim());
    for (let i = 1; i < growing.length; i++) assert.ok(growing[i].startsWith(growing[i - 1].trimEnd()), `each step extends the last: ${JSON.stringify(growing[i - 1])} → ${JSON.stringify(growing[i])}`);

    // second turn: the history goes with it
    await page.fill("#input", "Tell me more.");
    await page.press("#input", "Enter");
    await page.waitForFunction(chatIdle, 2);
    assert.deepEqual(bodies[1].messages.map((m) => m.role), ["user", "assistant", "user"]);
    // the reply goes back as sent (the page shows it as Markdown; stories260K writes plain prose)
    const words = (t: string) => t.replace(/\s+/g, " ").trim();
    assert.equal(words(bodies[1].messages[1].content), words(first));
    assert.equal(await page.locator(".msg").count(), 4);

    // the history survives a reload
    const secondReply = await page.textContent(".msg.assistant >> nth=1");
    await page.reload();
    assert.equal(await page.locator(".msg").count(), 4);
    assert.equal(await page.textContent(".msg.assistant >> nth=1"), secondReply);

    // regenerate: the last reply is asked for again with the same history
    await page.click(".msg.assistant >> nth=1 >> .regenerate");
    await page.waitForFunction(chatIdle, 2);
    assert.deepEqual(bodies[2].messages, bodies[1].messages);
    assert.equal(await page.locator(".msg").count(), 4);

    // edit: the last message goes back into the box with its reply gone; sending replaces it
    await page.click(".msg.user >> nth=1 >> .edit");
    assert.equal(await page.inputValue("#input"), "Tell me more.");
    assert.equal(await page.locator(".msg").count(), 2);
    await page.fill("#input", "Tell me about the dog.");
    await page.press("#input", "Enter");
    await page.waitForFunction(chatIdle, 2);
    assert.deepEqual(bodies[3].messages.map((m) => m.role), ["user", "assistant", "user"]);
    assert.equal(bodies[3].messages[2].content, "Tell me about the dog.");

    // stop: a long reply is cut off and the server's slot comes back. The tiny model is fast, so this request is
    // made long (ignore_eos, rewritten on its way out) and Stop is pressed at its first text. (Whether the server
    // was still generating by then is a race here; scheduling.test.ts checks the server-side abort.)
    const before = (await raw(srv, "/health")).json;
    await page.route("**/v1/chat/completions", async (route) => {
      await route.continue({ postData: JSON.stringify({ ...route.request().postDataJSON(), max_tokens: 480, ignore_eos: true }) });
    });
    // and the network is slowed more, so the reply arrives over seconds, not milliseconds
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: 16 * 1024, uploadThroughput: -1 });
    await page.fill("#input", "A long story please.");
    await page.click("#send");
    await page.waitForFunction(() => {
      const replies = document.querySelectorAll(".msg.assistant .body");
      const last = replies[replies.length - 1];
      return replies.length === 3 && last.textContent !== "…" && last.textContent.length > 0;
    });
    await page.evaluate(() => document.getElementById("stop").click());
    await page.waitForFunction(() => !document.getElementById("send").disabled);
    await page.unroute("**/v1/chat/completions");
    await cdp.send("Network.emulateNetworkConditions", { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
    for (let i = 0; i < 200 && (await raw(srv, "/health")).json.active > 0; i++) await new Promise((r) => setTimeout(r, 20));
    const h = (await raw(srv, "/health")).json;
    assert.equal(h.active, 0);
    assert.equal(h.aborted + h.completed, before.aborted + before.completed + 1);
    const shown = Number(/(\d+) tokens/.exec((await page.textContent("#stats"))!)![1]);
    assert.ok(shown < 480, `the page stopped reading after ${shown} of 480 tokens`);

    // new chat: empty log, and the next turn starts a new conversation
    await page.click("#reset");
    assert.equal(await page.locator(".msg").count(), 0);
    await page.fill("#input", "Hi again");
    await page.click("#send");
    await page.waitForFunction(chatIdle, 1);
    assert.deepEqual(bodies.at(-1)!.messages, [{ role: "user", content: "Hi again" }]);

    // the list holds both conversations, newest first; picking the older one brings it back (6 messages)
    assert.deepEqual(await page.locator("#conv-list li button.pick").allTextContents(), ["Hi again", "Hello, who are you?"]);
    await page.click("#conv-list li >> nth=1 >> button.pick");
    assert.equal(await page.locator(".msg").count(), 6);
    await page.reload();
    assert.equal(await page.locator(".msg").count(), 6, "the current conversation is remembered");
    // deleting one leaves the other
    await page.click("#conv-list li >> nth=0 >> button.delete");
    assert.deepEqual(await page.locator("#conv-list li button.pick").allTextContents(), ["Hello, who are you?"]);
    await page.reload();
    assert.equal(await page.locator("#conv-list li").count(), 1);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it("generation: the sliders set the request; the output streams; history and reset", async () => {
    const { page, errors } = await newPage("/generate");
    const sent: Record<string, unknown>[] = [];
    await page.route("**/v1/completions", async (route) => {
      sent.push(route.request().postDataJSON());
      await route.continue();
    });
    const generate = async (n: number) => {
      await page.click("#generate");
      await page.waitForFunction((k: number) => document.querySelectorAll("#history li").length === k && !document.getElementById("generate").disabled, n);
    };

    await page.fill("#prompt", "Once upon a time");
    await generate(1);
    assert.deepEqual(
      { max_tokens: sent[0].max_tokens, temperature: sent[0].temperature, top_k: sent[0].top_k, top_p: sent[0].top_p, stream: sent[0].stream },
      { max_tokens: 128, temperature: 1, top_k: 50, top_p: 0.92, stream: true },
    );
    const out = await page.textContent("#output");
    assert.ok(out!.startsWith("Once upon a time") && out!.length > "Once upon a time".length, out!);
    assert.match((await page.textContent("#stats"))!, /tok\/s/);

    // move sliders: by value (temperature → 0 = greedy, top_p) and with the keyboard (max_new_tokens, top_k)
    await page.locator("#temperature").fill("0");
    await page.locator("#top_p").fill("0.5");
    await page.focus("#max_new_tokens");
    for (let i = 0; i < 3; i++) await page.keyboard.press("ArrowLeft");
    await page.focus("#top_k");
    await page.keyboard.press("Home");
    assert.equal(await page.textContent("#max_new_tokens_value"), "125");
    await generate(2);
    assert.deepEqual(
      { max_tokens: sent[1].max_tokens, temperature: sent[1].temperature, top_k: sent[1].top_k, top_p: sent[1].top_p },
      { max_tokens: 125, temperature: 0, top_k: 0, top_p: 0.5 },
    );
    // greedy twice gives the same text
    const greedy = await page.textContent("#output");
    await generate(3);
    assert.equal(await page.textContent("#output"), greedy);

    // history: click an earlier run to restore it; reset clears everything
    await page.click("#history li:last-child");
    assert.equal(await page.textContent("#output"), out);
    await page.click("#reset");
    assert.equal(await page.locator("#history li").count(), 0);
    assert.equal(await page.textContent("#output"), "");
    assert.deepEqual(errors, []);
    await page.close();
  });
});
