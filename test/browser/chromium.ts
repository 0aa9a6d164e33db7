/**
 * Shared by the Chromium tests: Debian's /usr/bin/chromium through playwright-core (skipped, saying why, when it
 * is not installed), the bundle built if a test run starts without it, and pages that record script errors and
 * any request leaving the server (the pages must not have external assets).
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { packageRoot } from "../../src/model/embedded.js";

export const CHROMIUM = "/usr/bin/chromium";
export const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does this)`;

const BASE_ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"];
/** WebGPU on the CPU (SwiftShader's Vulkan), as the checks run it. */
export const WEBGPU_ARGS = ["--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"];

/** npm test builds dist/web before the tests; a test run started some other way builds it here. */
export function ensureBundle(): void {
  if (!existsSync(join(packageRoot(), "dist", "web", "app.js"))) {
    execFileSync(process.execPath, [join(packageRoot(), "scripts", "build-web.mjs")], { stdio: "inherit" });
  }
}

export async function launch(opts: { webgpu?: boolean } = {}): Promise<Browser> {
  ensureBundle();
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: CHROMIUM, args: [...BASE_ARGS, ...(opts.webgpu ? WEBGPU_ARGS : ["--disable-gpu"])] });
}

export interface OpenOptions {
  /** Remove navigator.gpu before any page script runs: the tab sees a browser without WebGPU. */
  noWebGpu?: boolean;
  viewport?: { width: number; height: number };
  colorScheme?: "light" | "dark";
  /** Runs in the page before any of its scripts (after the noWebGpu removal). */
  init?: () => void;
  /** Called with the page before it loads (e.g. page.route to answer some requests differently). */
  setup?: (page: Page) => Promise<unknown>;
}

export async function openPage(browser: Browser, url: string, o: OpenOptions = {}): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: o.viewport ?? { width: 1280, height: 800 }, colorScheme: o.colorScheme ?? "light" });
  const page = await context.newPage();
  // (runs in the page; this project compiles without the DOM types, hence globalThis)
  if (o.noWebGpu) await page.addInitScript(() => { delete (globalThis as unknown as { Navigator: { prototype: { gpu?: unknown } } }).Navigator.prototype.gpu; });
  if (o.init) await page.addInitScript(o.init);
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const origin = new URL(url).origin;
  page.on("request", (r) => { if (!r.url().startsWith(origin) && !r.url().startsWith("blob:") && !r.url().startsWith("data:")) errors.push(`external request: ${r.url()}`); });
  await o.setup?.(page);
  await page.goto(url);
  return { page, errors };
}
