/**
 * The JSON-schema subset tool parameters use (type, enum, const, properties, required, additionalProperties,
 * items, min/max lengths and bounds, anyOf/oneOf), validated on finished values. The constrained decoder
 * (json-prefix.ts) enforces the structural part while tokens are chosen; this checks the rest afterwards.
 */
import { pushAll } from "../arrays.js";
export type JsonSchema = Record<string, unknown>;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

function typeMatches(t: string, actual: string): boolean {
  return t === actual || (t === "number" && actual === "integer");
}

/** Problems with `value` under `schema`, each naming its path ("$.city: expected string"); [] when valid. */
export function validateValue(schema: JsonSchema | undefined, value: unknown, path = "$"): string[] {
  if (!isObj(schema)) return [];
  const errs: string[] = [];
  const alts = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(alts) && alts.length && !alts.some((s) => validateValue(s, value, path).length === 0)) {
    errs.push(`${path}: matches none of the allowed schemas`);
  }
  const actual = jsonType(value);
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
  if (types.length && !types.some((t) => typeMatches(t, actual))) {
    return [...errs, `${path}: expected ${types.join(" or ")}, got ${actual}`];
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => deepEqual(e, value))) {
    errs.push(`${path}: must be one of ${JSON.stringify(schema.enum)}`);
  }
  if ("const" in schema && !deepEqual(schema.const, value)) errs.push(`${path}: must be ${JSON.stringify(schema.const)}`);
  if (typeof value === "string") {
    const len = [...value].length;
    if (typeof schema.minLength === "number" && len < schema.minLength) errs.push(`${path}: shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === "number" && len > schema.maxLength) errs.push(`${path}: longer than ${schema.maxLength}`);
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) errs.push(`${path}: does not match ${schema.pattern}`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) errs.push(`${path}: below ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) errs.push(`${path}: above ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) errs.push(`${path}: not above ${schema.exclusiveMinimum}`);
    if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) errs.push(`${path}: not below ${schema.exclusiveMaximum}`);
  }
  if (isObj(value)) {
    const props = isObj(schema.properties) ? (schema.properties as Record<string, JsonSchema>) : {};
    for (const r of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (!(r in value)) errs.push(`${path}: missing required "${r}"`);
    }
    for (const [k, v] of Object.entries(value)) {
      if (k in props) pushAll(errs, validateValue(props[k], v, `${path}.${k}`));
      else if (schema.additionalProperties === false) errs.push(`${path}: unexpected property "${k}"`);
      else if (isObj(schema.additionalProperties)) pushAll(errs, validateValue(schema.additionalProperties, v, `${path}.${k}`));
    }
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems) errs.push(`${path}: fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems) errs.push(`${path}: more than ${schema.maxItems} items`);
    if (isObj(schema.items)) value.forEach((x, i) => pushAll(errs, validateValue(schema.items as JsonSchema, x, `${path}[${i}]`)));
  }
  return errs;
}
