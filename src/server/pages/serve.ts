/**
 * The web front end as the server serves it: `/`, `/generate` and `/local` are one HTML shell each (shell.ts)
 * over the bundle scripts/build-web.mjs writes to dist/web (served under /web/), and /local reads the embedded
 * model's files from /models/stories260K/ with HTTP Range requests. Only known files are served: the bundle's
 * and the model folder's names are listed once, so no request path ever reaches the file system as given.
 */
import { createReadStream, existsSync, readdirSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { defaultModelDir, packageRoot } from "../../model/embedded.js";
import { PAGE_CSP, pageShell, type PageName } from "./shell.js";

const PAGES: Readonly<Record<string, PageName>> = { "/": "chat", "/generate": "generate", "/local": "local" };

const PAGE_HEADERS = {
  "Content-Type": "text/html; charset=utf-8",
  "Content-Security-Policy": PAGE_CSP,
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-cache",
};

const TYPES: Readonly<Record<string, string>> = {
  js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8", json: "application/json; charset=utf-8",
  txt: "text/plain; charset=utf-8", md: "text/plain; charset=utf-8", safetensors: "application/octet-stream",
};

export function webDir(): string {
  return join(packageRoot(), "dist", "web");
}

/** Whether `path` is one of the pages (the caller checks the method first). */
export function isPage(path: string): boolean {
  return path in PAGES;
}

export function servePage(path: string, res: ServerResponse): void {
  if (!existsSync(join(webDir(), "app.js"))) {
    res.writeHead(503, PAGE_HEADERS).end(`<!doctype html><meta charset="utf-8"><title>Front end not built</title>
<p>The web front end is not built: run <code>npm run build</code> (it writes dist/web), then reload.</p>`);
    return;
  }
  res.writeHead(200, PAGE_HEADERS).end(pageShell(PAGES[path], "/web/"));
}

/** name → absolute path for each plain file in `dir` (read once: the folders do not change while serving). */
function listing(dir: string): Map<string, string> {
  const m = new Map<string, string>();
  if (!existsSync(dir)) return m;
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isFile()) m.set(n, p);
  }
  return m;
}

let files: { web: Map<string, string>; model: Map<string, string> } | null = null;
function known(): { web: Map<string, string>; model: Map<string, string> } {
  // the bundle may be built after the server starts (tests build, then serve): list it again until it exists
  if (!files || files.web.size === 0) files = { web: listing(webDir()), model: listing(defaultModelDir()) };
  return files;
}

/**
 * Serves /web/<bundle file> and /models/stories260K/<file> (GET and HEAD, single Range requests answered 206).
 * Returns false for any other path.
 */
export function serveStatic(path: string, req: IncomingMessage, res: ServerResponse): boolean {
  const m = /^\/(web|models\/stories260K)\/([^/]+)$/.exec(path);
  if (!m) return false;
  const file = (m[1] === "web" ? known().web : known().model).get(decodeURIComponent(m[2]));
  if (!file) return false;
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD" }).end();
    return true;
  }
  const size = statSync(file).size;
  const headers: Record<string, string | number> = {
    "Content-Type": TYPES[file.slice(file.lastIndexOf(".") + 1)] ?? "application/octet-stream",
    "Accept-Ranges": "bytes", "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
  };
  let start = 0, end = size - 1, status = 200;
  const range = req.headers.range;
  if (range) {
    const r = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    // one range only (what the loader asks for); anything else gets the whole file, as RFC 9110 allows
    if (r && (r[1] || r[2])) {
      if (r[1]) {
        start = Number(r[1]);
        end = r[2] ? Math.min(Number(r[2]), size - 1) : size - 1;
      } else {
        start = Math.max(0, size - Number(r[2]));
      }
      if (start > end || start >= size) {
        res.writeHead(416, { "Content-Range": `bytes */${size}` }).end();
        return true;
      }
      status = 206;
      headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
    }
  }
  headers["Content-Length"] = end - start + 1;
  res.writeHead(status, headers);
  if (req.method === "HEAD" || end < start) {
    res.end();
    return true;
  }
  createReadStream(file, { start, end }).on("error", () => res.destroy()).pipe(res);
  return true;
}
