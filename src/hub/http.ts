/**
 * HTTP for the hub clients: Node's built-in fetch, redirects followed by hand (so the first response's headers —
 * the Hub's X-Linked-Size / X-Linked-Etag / X-Repo-Commit, sent on the 302 to the LFS CDN — stay readable, and so
 * the token is not sent to another host), and HTTP errors turned into messages that say what to do.
 */
import { XverseError } from "../errors.js";

/** A failure worth another try after a pause: connection reset or cut, 408 / 429 / 5xx. */
export class RetryableError extends Error {
  constructor(message: string, readonly retryAfterMs?: number) {
    super(message);
  }
}

export interface Fetched {
  res: Response;
  /** Headers of the first response (the 30x itself when redirected). */
  first: Headers;
  /** The URL that answered last. */
  url: string;
}

/** What a failed request was for, to word the error. */
export interface RequestContext {
  source: string;
  repo: string;
  revision: string;
  /** The file, for downloads; absent for the listing. */
  path?: string;
  /** How a user passes credentials to this source (said on 401 / 403). */
  authHint: string;
  hasToken: boolean;
}

const MAX_REDIRECTS = 10;

export async function fetchFollow(url: string, headers: Record<string, string>, signal: AbortSignal | undefined,
  ctx: RequestContext, fetchImpl: typeof fetch = fetch): Promise<Fetched> {
  let first: Headers | null = null;
  let h = { ...headers };
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    let res: Response;
    try {
      res = await fetchImpl(url, { headers: h, redirect: "manual", signal });
    } catch (e) {
      if (signal?.aborted) throw e;
      throw new RetryableError(`${url}: ${describeNetworkError(e)}`);
    }
    first ??= res.headers;
    if (res.status >= 300 && res.status < 400 && res.headers.has("location")) {
      await res.body?.cancel().catch(() => {});
      const next = new URL(res.headers.get("location")!, url);
      // a signed CDN URL carries its own authorization; the token stays with the host it was meant for
      if (next.origin !== new URL(url).origin) {
        h = Object.fromEntries(Object.entries(h).filter(([k]) => k.toLowerCase() !== "authorization"));
      }
      url = next.href;
      continue;
    }
    if (res.ok || res.status === 416) return { res, first, url };
    await res.body?.cancel().catch(() => {});
    throw httpError(res, ctx);
  }
  throw new XverseError("http_error", `${ctx.source}: more than ${MAX_REDIRECTS} redirects for ${ctx.path ?? ctx.repo}; is HF_ENDPOINT a working mirror?`);
}

/** A listing request: GET url as JSON, retried; a body that is not JSON is a bad_listing error (`hint` appended). */
export async function fetchListingJson(url: string, headers: Record<string, string>, ctx: RequestContext,
  o: { signal?: AbortSignal; retry?: RetryOptions; fetch?: typeof fetch; hint?: string }): Promise<unknown> {
  return withRetry(async () => {
    const { res } = await fetchFollow(url, { ...headers, accept: "application/json" }, o.signal, ctx, o.fetch);
    try {
      return (await res.json()) as unknown;
    } catch (e) {
      throw new XverseError("bad_listing", `${ctx.source}: the file list of ${ctx.repo}@${ctx.revision} is not JSON (${(e as Error).message})${o.hint ?? ""}`);
    }
  }, { ...o.retry, signal: o.signal });
}

export function describeNetworkError(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  const c = err.cause;
  return c?.code ? `${c.code}${c.message ? ` (${c.message})` : ""}` : (c?.message ?? err.message ?? String(e));
}

/**
 * The Hub names its 4xx errors in X-Error-Code (huggingface_hub reads the same header): RepoNotFound (sent as 401
 * to anonymous callers, so private repos do not leak), RevisionNotFound, EntryNotFound, GatedRepo.
 */
export function httpError(res: Response, ctx: RequestContext): Error {
  const code = res.headers.get("x-error-code") ?? "";
  const what = ctx.path ? `${ctx.path} in ${ctx.repo}@${ctx.revision}` : `${ctx.repo}@${ctx.revision}`;
  const s = res.status;
  if (s === 408 || s === 429 || s >= 500) {
    const ra = Number(res.headers.get("retry-after"));
    return new RetryableError(`${ctx.source} answered ${s} for ${what}`, Number.isFinite(ra) && ra > 0 ? ra * 1000 : undefined);
  }
  if (code === "RepoNotFound" || (s === 404 && !ctx.path && code !== "RevisionNotFound")) {
    return new XverseError("not_found",
      `${ctx.source} has no repository ${ctx.repo} (HTTP ${s}): check the id (org/name, as on the model page)` +
      (ctx.hasToken ? "" : `; a private repository also answers this way without a token — ${ctx.authHint}`));
  }
  if (code === "RevisionNotFound") {
    return new XverseError("not_found", `${ctx.repo} has no revision "${ctx.revision}" on ${ctx.source} (HTTP ${s}): give a branch, tag or commit that exists (REPO@REVISION)`);
  }
  if (s === 404 || code === "EntryNotFound") {
    return new XverseError("not_found", `${ctx.source} has no file ${what} (HTTP ${s}); the repository exists but this file does not — check --include, or the revision`);
  }
  if (s === 401 || s === 403 || code === "GatedRepo") {
    const gated = code === "GatedRepo" || s === 403;
    return new XverseError("unauthorized",
      `${ctx.source} refused ${what} (HTTP ${s}${code ? ` ${code}` : ""}): ` +
      (gated ? "the repository is gated or private — accept its terms on the model page with your account, then " : "it needs credentials — ") +
      (ctx.hasToken ? "check that your token has read access to it" : ctx.authHint));
  }
  return new XverseError("http_error", `${ctx.source} answered HTTP ${s} ${res.statusText} for ${what}`);
}

export interface RetryOptions {
  /** Further tries after the first failure (default 5). */
  retries?: number;
  /** First pause; doubled each time, at most 30 s (default 500 ms). */
  backoffMs?: number;
  signal?: AbortSignal;
  onRetry?: (message: string, waitMs: number) => void;
  /** A counter of work done (bytes received); a failure after progress starts the count of tries over. */
  progress?: () => number;
}

/** Runs `fn` until it succeeds, fails for good, or RetryableError has been thrown `retries` + 1 times. */
export async function withRetry<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const retries = o.retries ?? 5;
  let mark = o.progress?.() ?? 0;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!(e instanceof RetryableError) || o.signal?.aborted) throw e;
      // a long download over a flaky link may drop many times; only drops without progress in between count
      const now = o.progress?.() ?? 0;
      if (now !== mark) { mark = now; attempt = 0; }
      if (attempt >= retries) throw new XverseError("network", `${e.message}; gave up after ${retries + 1} tries — check the connection and run again`);
      const wait = e.retryAfterMs ?? Math.min(30_000, (o.backoffMs ?? 500) * 2 ** attempt);
      o.onRetry?.(e.message, wait);
      await sleep(wait, o.signal);
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() { clearTimeout(t); signal?.removeEventListener("abort", done); resolve(); }
    signal?.addEventListener("abort", done, { once: true });
  });
}
