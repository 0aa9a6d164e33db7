// Builds the browser front end into dist/web with esbuild (no network): app.js + app.css (one bundle for every
// page: /, /generate, /local), local-worker.js (the Web Worker /local runs the model in), xverse.js (the library alone: src/browser/index.ts), the HTML shells of /local for
// static use (index.html and local.html), and a copy of the embedded model, so dist/web is a folder any static
// server can serve.
// Platform "browser" makes a `node:` import anywhere under web/ or src/browser a build error: the library part
// the tab runs must stay free of Node built-ins. Prints the bundles' sizes, raw and gzip.
import { cpSync, mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

// esbuild is a dev dependency: a production install from a git checkout (npm ci --omit=dev runs prepare too)
// has no bundler, and then goes on without the pages rather than failing the install.
let build;
try {
  ({ build } = await import("esbuild"));
} catch {
  console.warn("build-web: esbuild is not installed (a dev dependency), so dist/web is not built; the server's pages (/, /generate, /local) need it: npm install, then npm run build");
  process.exit(0);
}

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist", "web");
mkdirSync(out, { recursive: true });

await build({
  // app: the front end of every page; xverse: the library alone, for pages of your own (import { … } from "./xverse.js")
  // local-worker: the Web Worker /local runs the model in (app.js starts it from the URL next to itself)
  entryPoints: { app: join(root, "web", "main.ts"), xverse: join(root, "src", "browser", "index.ts"), "local-worker": join(root, "web", "local-worker.ts") },
  outdir: out,
  bundle: true,
  platform: "browser",
  format: "esm",
  target: ["chrome113", "firefox115", "safari16"],
  minify: true,
  sourcemap: false,
  legalComments: "linked",
  logLevel: "warning",
  loader: { ".css": "css" },
});
cpSync(join(root, "web", "app.css"), join(out, "app.css"));

// The shells come from the same function the server uses (compiled by tsc first); static copies use relative URLs.
const shellJs = join(root, "dist", "src", "server", "pages", "shell.js");
if (existsSync(shellJs)) {
  const { pageShell } = await import(shellJs);
  // only /local works without our server (the other pages talk to its API)
  for (const file of ["index.html", "local.html"]) writeFileSync(join(out, file), pageShell("local", "./", { static: true }));
}
cpSync(join(root, "models", "stories260K"), join(out, "models", "stories260K"), { recursive: true });

const kb = (n) => (n / 1024).toFixed(1) + " KiB";
const sizes = [];
for (const name of ["app.js", "local-worker.js", "xverse.js", "app.css"]) {
  const bytes = readFileSync(join(out, name));
  // Node globals survive minification by name: one in a bundle would throw in a browser at run time
  const nodeGlobal = name.endsWith(".js") && /\b(Buffer\.(from|alloc|byteLength|concat)|require\(|__dirname|process\.(env|argv|stdout|stderr|platform))/.exec(bytes.toString("utf8"));
  if (nodeGlobal) {
    console.error(`build-web: ${name} uses the Node global "${nodeGlobal[0]}", which browsers lack; find it under src/ and use a web API`);
    process.exit(1);
  }
  sizes.push(`${name} ${kb(bytes.length)} (gzip ${kb(gzipSync(bytes).length)})`);
}
console.log(`dist/web: ${sizes.join(", ")}`);
