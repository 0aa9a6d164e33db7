/** Shared by the server tests: an in-process server on a free loopback port, and the official openai client. */
import OpenAI from "openai";
import { startServer, type RunningServer, type ServeOptions } from "../../src/server/http.js";

export function startTestServer(opts: ServeOptions = {}): Promise<RunningServer> {
  return startServer({ port: 0, concurrency: 2, load: { backend: "auto" }, ...opts });
}

export function openai(srv: RunningServer, apiKey = "unused"): OpenAI {
  return new OpenAI({ baseURL: `${srv.url}/v1`, apiKey, maxRetries: 0, timeout: 30_000 });
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A plain fetch, for requests the openai client would refuse to send. */
export async function raw(srv: RunningServer, path: string, init: RequestInit & { body?: string | Buffer } = {}): Promise<RawResponse> {
  const res = await fetch(srv.url + path, init as RequestInit);
  const text = await res.text();
  let json: unknown = null;
  try { json = JSON.parse(text); } catch { /* not JSON: tests assert on that */ }
  return { status: res.status, headers: res.headers, text, json };
}

export function post(srv: RunningServer, path: string, body: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return raw(srv, path, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
}

/** Reads an SSE response into its data payloads (the final "[DONE]" included as a string). */
export async function sseEvents(res: Response): Promise<(any | "[DONE]")[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const text = await res.text();
  return text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => {
    const d = e.slice(6);
    return d === "[DONE]" ? d : JSON.parse(d);
  });
}
