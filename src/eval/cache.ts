/**
 * Finished items, one JSON line each ({key, record}), appended as they finish so an interrupted run resumes
 * where it stopped. A torn last line (the process died mid-write) is ignored. Keys name the prompt format
 * version, model, task, subject, item index and shot count, so a changed setting never reuses a stale score.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { writeError } from "../io/atomic.js";

/** Bump when a prompt format or scoring rule changes: old cache lines then stop matching. */
export const FORMAT_VERSION = "eval-v1";

export class ResultCache<T = unknown> {
  private readonly map = new Map<string, T>();

  /** The file ends in a torn line (a write cut short): the next record starts on a line of its own. */
  private torn = false;

  constructor(readonly path: string | null) {
    if (!path || !existsSync(path)) return;
    const text = readFileSync(path, "utf8");
    this.torn = text.length > 0 && !text.endsWith("\n");
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        const { key, record } = JSON.parse(line) as { key: string; record: T };
        if (typeof key === "string") this.map.set(key, record);
      } catch { /* torn line from an interrupted write */ }
    }
  }

  get size(): number { return this.map.size; }

  get(key: string): T | undefined { return this.map.get(key); }

  put(key: string, record: T): void {
    this.map.set(key, record);
    if (!this.path) return;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      appendFileSync(this.path, (this.torn ? "\n" : "") + JSON.stringify({ key, record }) + "\n");
      this.torn = false;
    } catch (e) {
      this.torn = true; // part of the line may be on disk

      // a torn line from a failed append is skipped on resume, so the cache stays usable
      throw writeError(this.path, e, "the results so far are kept; rerun to resume once it is fixed");
    }
  }
}

export function itemKey(modelId: string, task: string, subject: string, index: number, shots: number): string {
  return [FORMAT_VERSION, modelId, task, subject, index, `${shots}shot`].join("|");
}
