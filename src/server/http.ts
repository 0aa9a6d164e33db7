/**
 * The HTTP thread: routing, auth, body limits, JSON errors. It never runs the model (that is the worker's job,
 * via the scheduler), so it stays responsive — /health answers in milliseconds while tokens are being made.
 * Every failure is an OpenAI-style JSON error and leaves the server serving.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { timingSafeEqual } from "node:crypto";
import { ApiError } from "./errors.js";
import { isPage, servePage, serveStatic } from "./pages/serve.js";
import { chatCompletion, completion, sendJson } from "./routes.js";
import { Scheduler } from "./scheduler.js";
import { parseChatRequest, parseCompletionRequest, parseDetokenize, parseTokenize } from "./schema.js";
import type { WorkerInit } from "./worker.js";

export interface ServeOptions {
  /** Model directory or .gguf file; default: the embedded stories260K. */
  model?: string;
  load?: WorkerInit["load"];
  /** Chat format: v1, v2 or template (default: the model directory's choice). */
  format?: string | null;
  /** Name reported by /v1/models (default: the model folder's name). */
  modelId?: string;
  /** Default 127.0.0.1: reachable from this machine only unless asked otherwise. */
  host?: string;
  /** Default 8000; 0 picks a free port. */
  port?: number;
  /** Requests generating at once (default 4); more wait in a FIFO queue. */
  concurrency?: number;
  /** When set, /v1/* needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Largest request body in bytes (default 4 MiB). */
  maxBody?: number;
  /** Milliseconds a request body may take to arrive in full (default 60 s); then 408 and the connection closes. */
  bodyTimeoutMs?: number;
  /** Most requests waiting for a generation slot; one more gets 429 with Retry-After. Default: no limit. */
  maxQueue?: number;
  /** Origins browsers may call the API from (CORS); "*" = any. Default: none (no CORS headers). */
  cors?: string[];
  /**
   * Milliseconds one generation may take from submission (queue wait included): a request still waiting then gets
   * 504, a running one is cut (finish_reason "length"). Default: no limit.
   */
  requestTimeoutMs?: number;
  log?: (line: string) => void;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  server: Server;
  scheduler: Scheduler;
  close(): Promise<void>;
  /**
   * Graceful stop: no new connections, new requests on open ones get 503, generations running or queued may finish
   * for up to `deadlineMs`; then the rest are cut and the server closes.
   */
  drain(deadlineMs: number): Promise<void>;
}

export const DEFAULT_MAX_BODY = 4 * 1024 * 1024;
export const DEFAULT_BODY_TIMEOUT_MS = 60_000;

const ROUTES = new Set(["/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/completions", "/tokenize", "/detokenize", "/", "/generate", "/local"]);

/** A client that hung up mid-upload: nothing to answer and nothing to log (it is not a server fault). */
const CLIENT_GONE = "client_closed_request";

/** CORS headers for a request from `origin`, when the server allows that origin (--cors); none otherwise. */
function corsHeaders(allowed: readonly string[] | undefined, origin: string | undefined): Record<string, string> {
  if (!allowed?.length) return {};
  const any = allowed.includes("*");
  if (!any && (!origin || !allowed.includes(origin))) return {};
  return {
    "Access-Control-Allow-Origin": any ? "*" : origin!,
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    ...(!any && { Vary: "Origin" }),
  };
}

/** Reads the body up to `max` bytes; beyond that, 413 (the rest is drained so the client reads the answer). */
function readBody(req: IncomingMessage, max: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // a body that stops arriving would hold its connection for Node's 300 s default (requestTimeout is off for SSE)
    const timer = setTimeout(() => {
      reject(new ApiError(408, `The request body did not arrive within ${timeoutMs / 1000} s; send it in one go (serve --body-timeout)`, null, "request_timeout"));
    }, timeoutMs);
    timer.unref();
    const done = () => clearTimeout(timer);
    req.once("close", done);
    const tooBig = () => new ApiError(413, `Request body too large: the limit is ${max} bytes (serve --max-body)`, null, "request_too_large");
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > max) {
      req.resume();
      reject(tooBig());
      return;
    }
    const parts: Buffer[] = [];
    let size = 0, over = false;
    req.on("data", (b: Buffer) => {
      if (over) return;
      size += b.length;
      if (size > max) {
        over = true;
        parts.length = 0;
        reject(tooBig());
        return;
      }
      parts.push(b);
    });
    req.on("end", () => { done(); if (!over) resolve(Buffer.concat(parts)); });
    req.on("error", (e) => {
      done();
      if (over) return;
      // ECONNRESET / "aborted": the client hung up mid-upload
      reject(req.destroyed || (e as NodeJS.ErrnoException).code === "ECONNRESET" || e.message === "aborted"
        ? new ApiError(400, "The client closed the connection before its request body arrived", null, CLIENT_GONE)
        : e);
    });
  });
}

async function jsonBody(req: IncomingMessage, max: number, timeoutMs: number): Promise<unknown> {
  const buf = await readBody(req, max, timeoutMs);
  if (buf.length === 0) throw new ApiError(400, "The request body is empty: send a JSON object", null, "invalid_json");
  try {
    return JSON.parse(buf.toString("utf8"));
  } catch (e) {
    throw new ApiError(400, `We could not parse the JSON body of your request: ${(e as Error).message}`, null, "invalid_json");
  }
}

function authorized(req: IncomingMessage, key: string): boolean {
  const h = req.headers.authorization ?? "";
  const m = /^Bearer\s+(.+)$/i.exec(h);
  if (!m) return false;
  const a = Buffer.from(m[1].trim()), b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}

export function requestHandler(sched: Scheduler, opts: ServeOptions, draining: () => boolean = () => false): (req: IncomingMessage, res: ServerResponse) => void {
  const maxBody = opts.maxBody ?? DEFAULT_MAX_BODY;
  const bodyTimeout = opts.bodyTimeoutMs ?? DEFAULT_BODY_TIMEOUT_MS;
  const started = Date.now();

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname.replace(/\/+$/, "") || "/";
    const method = req.method ?? "GET";
    // the routes behind --api-key; with /health, the API (CORS applies)
    const keyed = path.startsWith("/v1/") || path === "/tokenize" || path === "/detokenize" || path === "/metrics";
    const api = keyed || path === "/health";
    // requests by route for /metrics (unknown paths share one label, so scanners cannot grow the series)
    const label = ROUTES.has(path) ? path : path.startsWith("/v1/models/") ? "/v1/models/{id}" : "other";
    res.once("finish", () => sched.metrics.http(label, res.statusCode));
    if (api) for (const [k, v] of Object.entries(corsHeaders(opts.cors, req.headers.origin))) res.setHeader(k, v);
    if (method === "OPTIONS" && api) {
      res.writeHead(204).end();
      return;
    }
    if (draining() && path !== "/health" && path !== "/metrics") {
      res.setHeader("Connection", "close");
      throw new ApiError(503, "The server is shutting down: retry on another instance", null, "shutting_down");
    }
    const allow = (m: string) => {
      if (method !== m && !(m === "GET" && method === "HEAD")) throw new ApiError(405, `${method} ${path} is not allowed: use ${m}`, null, "method_not_allowed");
    };
    /** --max-queue: a request that would wait behind that many others is turned away, with when to retry. */
    const admit = (): void => {
      const s = sched.stats();
      if (opts.maxQueue === undefined || s.active < s.concurrency || s.queued < opts.maxQueue) return;
      const retry = Math.max(1, Math.ceil((s.queued + 1) / s.concurrency));
      const err = new ApiError(429, `The server is busy: ${s.active} requests are generating and ${s.queued} are waiting (serve --max-queue ${opts.maxQueue}); retry in ${retry} s`, null, "queue_full");
      err.headers = { "Retry-After": String(retry) };
      throw err;
    };
    if (keyed && opts.apiKey && !authorized(req, opts.apiKey)) {
      throw new ApiError(401, "Missing or wrong API key: send Authorization: Bearer <key>", null, "invalid_api_key");
    }
    switch (path) {
      case "/health":
        allow("GET");
        sendJson(res, 200, {
          status: "ok", model: sched.model.id, ...sched.stats(),
          max_batch: sched.workerMemory.maxBatch,
          rss: process.memoryUsage().rss, heap_used: process.memoryUsage().heapUsed, heap_total: process.memoryUsage().heapTotal,
          worker_heap_used: sched.workerMemory.heapUsed, worker_heap_total: sched.workerMemory.heapTotal,
          kv_pool_bytes: sched.kvUse.bytes ?? 0,
          uptime_s: Math.round((Date.now() - started) / 1000),
        }, { "Cache-Control": "no-store" });
        return;
      case "/v1/models":
        allow("GET");
        sendJson(res, 200, { object: "list", data: [modelCard(sched, started)] });
        return;
      case "/v1/chat/completions": {
        allow("POST");
        const env = parseChatRequest(await jsonBody(req, maxBody, bodyTimeout));
        admit();
        chatCompletion(sched, res, env, opts.requestTimeoutMs);
        return;
      }
      case "/v1/completions": {
        allow("POST");
        const env = parseCompletionRequest(await jsonBody(req, maxBody, bodyTimeout));
        admit();
        completion(sched, res, env, opts.requestTimeoutMs);
        return;
      }
      case "/metrics": {
        allow("GET");
        const text = await sched.metrics.text();
        res.writeHead(200, { "Content-Type": sched.metrics.contentType, "Cache-Control": "no-store" }).end(text);
        return;
      }
      case "/tokenize": {
        allow("POST");
        const q = parseTokenize(await jsonBody(req, maxBody, bodyTimeout));
        const r = await sched.tool<"tokens">({ type: "tokenize", ...q }).catch(workerError);
        // llama.cpp's server shape: ids, or with_pieces: [{id, piece}]
        sendJson(res, 200, { tokens: r.pieces ? r.tokens.map((id, i) => ({ id, piece: r.pieces![i] })) : r.tokens });
        return;
      }
      case "/detokenize": {
        allow("POST");
        const tokens = parseDetokenize(await jsonBody(req, maxBody, bodyTimeout));
        const r = await sched.tool<"text">({ type: "detokenize", tokens }).catch(workerError);
        sendJson(res, 200, { content: r.content });
        return;
      }
    }
    // the web front end: /, /generate, /local and their bundle + model files (pages/serve.ts)
    if (isPage(path)) {
      allow("GET");
      servePage(path, res);
      return;
    }
    if (serveStatic(path, req, res)) return;
    if (path.startsWith("/v1/models/")) {
      allow("GET");
      const id = decodeURIComponent(path.slice("/v1/models/".length));
      if (id !== sched.model.id) throw new ApiError(404, `The model '${id}' does not exist: this server has '${sched.model.id}'`, "model", "model_not_found");
      sendJson(res, 200, modelCard(sched, started));
      return;
    }
    throw new ApiError(404, `Unknown route: ${method} ${path}`, null, "not_found");
  };

  return (req, res) => {
    route(req, res).catch((e: unknown) => {
      const err = e instanceof ApiError ? e : new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, null, "internal_error");
      if (err.code === CLIENT_GONE) { res.destroy(); return; }
      if (err.status >= 500) opts.log?.(`error: ${req.method} ${req.url}: ${(e as Error)?.stack ?? String(e)}`);
      // after a 413 / 408 the connection is closed: the unread rest of the body must not be parsed as a request
      sendJson(res, err.status, err.body(), { ...err.headers, ...(err.status === 413 || err.status === 408 ? { Connection: "close" } : {}) });
    });
  };
}

/** A worker's error event (a /detokenize id outside the vocabulary…) as the HTTP error it describes. */
function workerError(m: { status: number; message: string; param: string | null; code: string | null }): never {
  throw new ApiError(m.status, m.message, m.param, m.code);
}

function modelCard(sched: Scheduler, started: number) {
  const m = sched.model;
  // max_model_len as vLLM names it, context_length as OpenRouter / LM Studio do
  return {
    id: m.id, object: "model", created: Math.floor(started / 1000), owned_by: "xverse-ts",
    max_model_len: m.contextLength, context_length: m.contextLength, quantization: m.quantization ?? null, backend: m.backend,
  };
}

/** Loads the model (in the worker), then listens. Resolves once requests can be served. */
export async function startServer(opts: ServeOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? (() => {});
  const sched = await Scheduler.start({ path: opts.model, load: opts.load ?? {}, format: opts.format, modelId: opts.modelId }, opts.concurrency ?? 4, log);
  let draining = false;
  const server = createServer(requestHandler(sched, opts, () => draining));
  // SSE streams can be long: no request timeout; keep-alive sockets of idle clients are still reaped
  server.requestTimeout = 0;
  const host = opts.host ?? "127.0.0.1";
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port ?? 8000, host, () => resolve());
    });
  } catch (e) {
    await sched.close();
    throw e;
  }
  const port = (server.address() as AddressInfo).port;
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}`, host, port, server, scheduler: sched,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await sched.close();
    },
    async drain(deadlineMs) {
      draining = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const end = Date.now() + deadlineMs;
      while (Date.now() < end) {
        const s = sched.stats();
        if (!s.active && !s.queued) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      // what is still running is cut; its client sees the connection close
      server.closeAllConnections();
      await closed;
      await sched.close();
    },
  };
}
