/**
 * Errors a user can cause (bad path, corrupt file, bad flag, prompt too long).
 * The CLI prints `message` without a stack for these; anything else is a bug and keeps its stack.
 */
export class XverseError extends Error {
  /** A short machine-readable category, e.g. "bad_checkpoint", "bad_config", "unsupported". */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "XverseError";
    this.code = code;
  }
}

export function fail(code: string, message: string): never {
  throw new XverseError(code, message);
}
