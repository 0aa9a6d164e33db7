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

export function sseData(res: ServerResponse, data: unknown): void {
  if (!res.writableEnded && !res.destroyed) res.write(`data: ${JSON.stringify(data)}\n\n`);
}

export function sseDone(res: ServerResponse): void {
  if (res.writableEnded || res.destroyed) return;
  res.write("data: [DONE]\n\n");
  res.end();
}
