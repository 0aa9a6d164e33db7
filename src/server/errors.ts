/**
 * HTTP errors in OpenAI's wire shape: `{"error": {"message", "type", "param", "code"}}`. Clients (the openai
 * package, LangChain, lm-eval) read `error.message` and the status, so every 4xx/5xx the server sends is one.
 */
export class ApiError extends Error {
  /** Extra response headers (e.g. Retry-After on a 429). */
  headers: Record<string, string> = {};
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: string = status >= 500 ? "server_error" : status === 401 ? "authentication_error" : "invalid_request_error",
  ) {
    super(message);
    this.name = "ApiError";
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 naming the field. */
export function badField(param: string, message: string, code = "invalid_value"): ApiError {
  return new ApiError(400, message, param, code);
}
