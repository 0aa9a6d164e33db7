import { parseFlags, numberFlag, type Command } from "../command.js";
import { MODEL_FLAGS, MODEL_FLAGS_HELP, loadOptionsFromFlags, resolveModelFlag } from "../model-flags.js";
import { Worker } from "node:worker_threads";
import { DEFAULT_BODY_TIMEOUT_MS, DEFAULT_MAX_BODY, type ServeOptions } from "../../server/http.js";
import type { ServeThreadMessage } from "../../server/serve-thread.js";
import { XverseError } from "../../errors.js";

const help = `Usage: xverse serve [options]

Serves the model over an OpenAI-compatible HTTP API, with a chat page at / and a
text-generation page at /generate. The model is loaded once, in a worker thread.
/local runs the embedded model (or one picked from disk) in the browser tab itself.

Routes:
  POST /v1/chat/completions   messages (system/user/assistant/tool), stream, tools, tool_choice,
                              response_format (json_object, json_schema), n, penalties, logit_bias
  POST /v1/completions        prompt (text or token ids), stream, echo, logprobs
  POST /tokenize, /detokenize llama.cpp server shapes
  GET  /v1/models, GET /health, GET /metrics (Prometheus), GET / (chat page), GET /generate, GET /local

Server options:
  --host HOST              address to bind (default 127.0.0.1: this machine only;
                           0.0.0.0 exposes the server to the network)
  --port N                 port (default 8000; 0 picks a free one)
  --concurrency N          requests generating at once (default 4); more wait in a FIFO queue
  --api-key KEY            require "Authorization: Bearer KEY" on /v1/*
                           (default: the XVERSE_API_KEY environment variable, if set)
  --max-body BYTES         largest request body (default ${DEFAULT_MAX_BODY})
  --max-queue N            most requests waiting beyond --concurrency; more get 429 with Retry-After
                           (default: no limit)
  --request-timeout S      seconds one generation may take, queue wait included: still waiting → 504,
                           running → cut with finish_reason "length" (default: no limit)
  --shutdown-timeout S     on SIGTERM / Ctrl-C, seconds running requests may finish before they are cut
                           (default 30); a second signal stops at once
  --cors ORIGIN            let browser pages from ORIGIN call /v1/* (repeatable; * = any origin;
                           default: no CORS headers)
  --body-timeout S         seconds a request body may take to arrive (default ${DEFAULT_BODY_TIMEOUT_MS / 1000}); then 408
  --chat-format F          v1 | v2 | template (default: the model directory's choice, else v2)
  --served-model-name ID   the model id /v1/models reports (default: the model folder's name)

${MODEL_FLAGS_HELP}

Example:
  xverse serve --port 8000
  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model": "stories260K", "messages": [{"role": "user", "content": "Hello"}]}'`;

export const command: Command = {
  summary: "serve an OpenAI-compatible API and the chat / text-generation pages",
  help,
  async run(argv) {
    const { values: v, positionals } = parseFlags(argv, {
      ...MODEL_FLAGS,
      host: { type: "string" },
      port: { type: "string" },
      concurrency: { type: "string" },
      "api-key": { type: "string" },
      "max-body": { type: "string" },
      "max-queue": { type: "string" },
      "request-timeout": { type: "string" },
      "shutdown-timeout": { type: "string" },
      cors: { type: "string", multiple: true },
      "body-timeout": { type: "string" },
      "chat-format": { type: "string" },
      "served-model-name": { type: "string" },
    });
    if (positionals.length) throw new XverseError("bad_flag", `serve takes no arguments, got "${positionals[0]}" (see --help)`);
    const format = v["chat-format"] as string | undefined;
    if (format !== undefined && !["v1", "v2", "template"].includes(format)) throw new XverseError("bad_flag", `--chat-format must be v1, v2 or template, got "${format}"`);
    const apiKey = (v["api-key"] as string | undefined) ?? process.env.XVERSE_API_KEY;
    const t0 = performance.now();
    const load = loadOptionsFromFlags(v);
    const port = numberFlag(v.port as string | undefined, "--port", { int: true, min: 0, max: 65535 }) ?? 8000;
    const drainMs = 1000 * (numberFlag(v["shutdown-timeout"] as string | undefined, "--shutdown-timeout", { min: 0, max: 3600 }) ?? 30);
    const opts: Omit<ServeOptions, "log"> & { drainMs: number } = {
      drainMs,
      model: await resolveModelFlag(v),
      // functions cannot cross to the server thread: no progress line there
      load: { ...load, onProgress: undefined, backend: typeof load.backend === "string" ? load.backend : undefined },
      format,
      modelId: v["served-model-name"] as string | undefined,
      host: (v.host as string | undefined) ?? "127.0.0.1",
      port,
      concurrency: numberFlag(v.concurrency as string | undefined, "--concurrency", { int: true, min: 1, max: 256 }) ?? 4,
      apiKey: apiKey || undefined,
      requestTimeoutMs: (() => {
        const s = numberFlag(v["request-timeout"] as string | undefined, "--request-timeout", { min: 0.1, max: 86400 });
        return s === undefined ? undefined : s * 1000;
      })(),
      maxQueue: numberFlag(v["max-queue"] as string | undefined, "--max-queue", { int: true, min: 0, max: 1_000_000 }),
      cors: (v.cors as string[] | undefined)?.length ? (v.cors as string[]) : undefined,
      maxBody: numberFlag(v["max-body"] as string | undefined, "--max-body", { int: true, min: 1024 }) ?? DEFAULT_MAX_BODY,
      bodyTimeoutMs: 1000 * (numberFlag(v["body-timeout"] as string | undefined, "--body-timeout", { min: 0.1, max: 3600 }) ?? DEFAULT_BODY_TIMEOUT_MS / 1000),
    };
    // the server runs in its own thread, with a capped young generation (see server/serve-thread.ts)
    const thread = new Worker(new URL("../../server/serve-thread.js", import.meta.url), { workerData: opts, resourceLimits: { maxYoungGenerationSizeMb: 8 } });
    const next = () => new Promise<ServeThreadMessage>((resolve, reject) => {
      const onExit = (code: number) => reject(new XverseError("server_exited", `the server thread exited with code ${code}`));
      thread.once("exit", onExit);
      thread.once("message", (m: ServeThreadMessage) => { thread.off("exit", onExit); resolve(m); });
    });
    const first = await next();
    if (first.type === "failed") {
      await thread.terminate();
      if (first.code === "EADDRINUSE") throw new XverseError("port_in_use", `port ${port} is in use: pick another with --port (0 = any free port)`);
      throw new XverseError(first.code && !/^E[A-Z]+$/.test(first.code) ? first.code : "serve_failed", first.message);
    }
    if (first.type !== "listening") throw new XverseError("serve_failed", "the server thread did not start");
    // the first stdout line is the address, so scripts (and tests) that start with --port 0 can find it
    process.stdout.write(`listening on ${first.url}\n`);
    const m = first.model;
    process.stderr.write(`model ${m.id} (${m.backend} backend, context ${m.contextLength}) loaded in ${(performance.now() - t0).toFixed(0)} ms · ` +
      `concurrency ${first.concurrency}${apiKey ? " · API key required" : ""}\n  ${m.kv}\n  chat: ${first.url}/   text generation: ${first.url}/generate   in the tab: ${first.url}/local\n`);
    let stopping = false;
    await new Promise<void>((resolve) => {
      thread.on("exit", (code) => {
        // a server thread that dies on its own ends the command with an error
        if (!stopping) {
          process.stderr.write(`xverse serve: the server thread exited (code ${code})\n`);
          process.exitCode = 1;
        }
        resolve();
      });
      const stop = () => {
        if (stopping) {
          // a second signal: stop now
          void thread.terminate();
          return;
        }
        stopping = true;
        process.stderr.write(`shutting down: no new requests; running ones may finish for ${drainMs / 1000} s\n`);
        thread.postMessage({ type: "close" });
        thread.once("message", () => void thread.terminate());
        setTimeout(() => void thread.terminate(), drainMs + 5000).unref();
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    });
  },
};
