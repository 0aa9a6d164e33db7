/**
 * Field checkers for request bodies: each returns the typed value or throws a 400 that names the field the way
 * the client wrote it (`messages[2].content`, `temperature`), so a wrong request is fixable from the message alone.
 */
import { badField } from "./errors.js";

export type Obj = Record<string, unknown>;

export const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

const kind = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `a ${typeof v}`);

export function obj(v: unknown, param: string): Obj {
  if (!isObj(v)) throw badField(param, `${param} must be an object, got ${kind(v)}`, "invalid_type");
  return v;
}

/** Rejects fields the endpoint does not know, as OpenAI does: a typo should not be silently ignored. */
export function onlyKeys(o: Obj, allowed: readonly string[], where = ""): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw badField(where + k, `Unrecognized request argument supplied: ${where}${k}`, "unknown_parameter");
  }
}

export function optString(o: Obj, key: string, where = ""): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw badField(where + key, `${where}${key} must be a string, got ${kind(v)}`, "invalid_type");
  return v;
}

export function optBool(o: Obj, key: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw badField(key, `${key} must be a boolean, got ${kind(v)}`, "invalid_type");
  return v;
}

export function optNumber(o: Obj, key: string, range: { min?: number; max?: number; int?: boolean } = {}): number | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number") throw badField(key, `${key} must be a number, got ${kind(v)}`, "invalid_type");
  // JSON.parse turns 1e400 into Infinity: say so, not "must be a number, got a number"
  if (!Number.isFinite(v)) throw badField(key, `${key} must be a finite number, got ${v} (a value beyond ±1.8e308 reads as Infinity)`, "invalid_type");
  if (range.int && !Number.isInteger(v)) throw badField(key, `${key} must be an integer, got ${v}`, "invalid_type");
  if (range.min !== undefined && v < range.min) throw badField(key, `${key} must be ≥ ${range.min}, got ${v}`);
  if (range.max !== undefined && v > range.max) throw badField(key, `${key} must be ≤ ${range.max}, got ${v}`);
  return v;
}

/** `stop`: a string or an array of up to `max` non-empty strings. */
export function stopList(o: Obj, max = 16): string[] {
  const v = o.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== "string")) throw badField("stop", `stop must be a string or an array of strings, got ${kind(v)}`, "invalid_type");
  if (list.length > max) throw badField("stop", `stop takes at most ${max} strings, got ${list.length}`);
  if (list.some((s) => s === "")) throw badField("stop", "stop strings must not be empty");
  return list as string[];
}

/** logit_bias: {"token id": bias} with ids as decimal strings and biases in −100 … 100 (OpenAI's range). */
export function logitBias(o: Obj): Record<number, number> | undefined {
  const v = o.logit_bias;
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw badField("logit_bias", `logit_bias must be an object mapping token ids to biases, got ${kind(v)}`, "invalid_type");
  const out: Record<number, number> = {};
  for (const [k, b] of Object.entries(v)) {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(k)) throw badField("logit_bias", `logit_bias keys must be token ids (non-negative integers), got ${JSON.stringify(k)}`);
    if (typeof b !== "number" || !Number.isFinite(b) || b < -100 || b > 100) throw badField("logit_bias", `logit_bias["${k}"] must be a number from -100 to 100, got ${JSON.stringify(b)}`);
    out[Number(k)] = b;
  }
  return out;
}
