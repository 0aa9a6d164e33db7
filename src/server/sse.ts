/** Server-sent events as OpenAI streams them: `data: {json}\n\n` per chunk, then `data: [DONE]\n\n`. */
import type { ServerResponse } from "node:http";

export function startSse(res: ServerResponse, extra: Record<string, string> = {}): void {
  res.writeHead(200, {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    Connection: "keep-alive",
    // proxies (nginx) buffer responses unless told not to, which would defeat streaming
    "X-Accel-Buffering": "no",
    ...extra,
  });
  res.flushHeaders();
}

const corked = new WeakSet<ServerResponse>();

/**
 * Writes one event. Events written in the same event-loop turn (a batched decode step delivers several tokens
 * at once) are corked into one socket write: fewer syscalls and fewer in-flight write objects per token.
 */
export function sseData(res: ServerResponse, data: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  if (!corked.has(res)) {
    corked.add(res);
    res.cork();
    setImmediate(() => {
      corked.delete(res);
      res.uncork();
    });
  }
  res.write(`data: ${JSON.stringify(data)}\n\n`);
}

export function sseDone(res: ServerResponse): void {
  if (res.writableEnded || res.destroyed) return;
  res.write("data: [DONE]\n\n");
  res.end();
}
