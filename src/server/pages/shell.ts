/**
 * The HTML shell of each page: a title, the page's name for the bundle (web/main.ts reads body[data-page]),
 * and the one stylesheet + script built into dist/web by scripts/build-web.mjs. All three pages — `/`,
 * `/generate`, `/local` — are this shell; everything they show comes from the same bundle. The server serves
 * the assets under /web/ (assets "/web/"); the static copy in dist/web uses relative paths (assets "./").
 */
export type PageName = "chat" | "generate" | "local";

export const PAGE_TITLES: Readonly<Record<PageName, string>> = {
  chat: "XVERSE chat",
  generate: "XVERSE text generation",
  local: "XVERSE in this tab",
};

/**
 * What the pages may load: only this origin's script, style and fetches (the API, the model files), images
 * only as data: URLs. Model output is sanitized before it is shown; this is the second fence, and it travels
 * with the static copy too (as a meta tag; the server also sends it as a header).
 */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'";

export function pageShell(page: PageName, assets: string, opts: { static?: boolean } = {}): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${PAGE_CSP}">
<meta name="color-scheme" content="light dark">
<title>${PAGE_TITLES[page]}</title>
<link rel="stylesheet" href="${assets}app.css">
<script type="module" src="${assets}app.js"></script>
</head>
<body data-page="${page}"${opts.static ? ' data-static="1"' : ""}><noscript>This page needs JavaScript.</noscript></body></html>
`;
}
