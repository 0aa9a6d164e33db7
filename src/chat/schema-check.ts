/**
 * Which JSON schemas the constrained decoder can honour for a JSON reply (response_format json_schema, chat()'s
 * responseFormat, `xverse generate --json-schema`). The decoder enforces structure while tokens are chosen; a
 * keyword it cannot enforce (pattern, minimum, format…) would let through replies the schema rejects, so such a
 * schema is refused up front with every offending keyword and where it is, rather than answered wrongly.
 */
import { XverseError } from "../errors.js";
import { numberBoundProblem, resolveRef } from "./json-prefix.js";
import type { JsonSchema } from "./schema.js";

/** Keywords that shape the generated value and are enforced token by token. */
const ENFORCED = new Set([
  "type", "properties", "required", "additionalProperties", "items", "enum", "const", "anyOf", "$ref", "$defs", "definitions",
  "minItems", "maxItems", "minLength", "maxLength",
]);
/** Numeric bounds: supported when wide enough to hold anyway, or a lower bound of 0 (see numberSign). */
const BOUNDS = new Set(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]);
/** Keywords that say nothing about which values are valid. */
const ANNOTATIONS = new Set(["title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly", "writeOnly"]);
const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 0;

/**
 * Problems that keep `schema` from being used for a JSON reply, each naming its place ("#/properties/age:
 * minimum is not supported"); [] when it is fine. The root must be an object schema, as OpenAI requires.
 */
export function schemaProblems(schema: unknown): string[] {
  const out: string[] = [];
  if (!isObj(schema)) return ['#: the schema must be a JSON object (e.g. {"type": "object", "properties": {…}})'];
  walk(schema, schema, "#", out, new Set());
  const root = isObj(schema.$ref) ? null : typeof schema.$ref === "string" ? resolveRef(schema, schema.$ref) : schema;
  if (root && root.type !== "object" && !(isObj(root.properties) && root.type === undefined)) {
    out.push(`#: the root must be an object schema ("type": "object"), got ${JSON.stringify(root.type ?? null)}`);
  }
  return out;
}

function walk(s: Obj, root: Obj, at: string, out: string[], seen: Set<Obj>): void {
  if (seen.has(s)) return;
  seen.add(s);
  for (const [k, v] of Object.entries(s)) {
    const here = `${at}/${k}`;
    if (BOUNDS.has(k)) {
      const types = Array.isArray(s.type) ? s.type : [s.type];
      const p = numberBoundProblem(k, v, types.length === 1 && types[0] === "integer");
      if (p) out.push(`${at}: ${p}`);
      continue;
    }
    if (!ENFORCED.has(k) && !ANNOTATIONS.has(k)) {
      out.push(`${at}: "${k}" is not supported (supported: ${[...ENFORCED].join(", ")}, and numeric bounds of ±1e15 or wider, minimum 0, exclusiveMinimum 0)`);
      continue;
    }
    switch (k) {
      case "type": {
        const list = Array.isArray(v) ? v : [v];
        for (const t of list) if (typeof t !== "string" || !TYPES.has(t)) out.push(`${here}: ${JSON.stringify(t)} is not a JSON schema type`);
        break;
      }
      case "properties":
      case "$defs":
      case "definitions":
        if (!isObj(v)) out.push(`${here}: must be an object`);
        else for (const [name, sub] of Object.entries(v)) child(sub, root, `${here}/${name}`, out, seen);
        break;
      case "additionalProperties":
        if (isObj(v)) child(v, root, here, out, seen);
        else if (typeof v !== "boolean") out.push(`${here}: must be a boolean or a schema`);
        break;
      case "items":
        if (Array.isArray(v)) out.push(`${here}: tuple items (an array of schemas) are not supported`);
        else child(v, root, here, out, seen);
        break;
      case "anyOf":
        if (!Array.isArray(v) || !v.length) out.push(`${here}: must be a non-empty array of schemas`);
        else v.forEach((sub, i) => child(sub, root, `${here}/${i}`, out, seen));
        break;
      case "enum":
        if (!Array.isArray(v) || !v.length) out.push(`${here}: must be a non-empty array`);
        break;
      case "required":
        if (!Array.isArray(v) || v.some((r) => typeof r !== "string")) out.push(`${here}: must be an array of property names`);
        else if (isObj(s.properties)) {
          for (const r of v as string[]) if (!(r in (s.properties as Obj))) out.push(`${here}: "${r}" is required but not in properties`);
        }
        break;
      case "$ref":
        if (typeof v !== "string" || !resolveRef(root, v)) out.push(`${here}: ${JSON.stringify(v)} does not resolve (only local refs such as "#/$defs/name")`);
        break;
      case "minItems":
      case "maxItems":
      case "minLength":
      case "maxLength":
        if (!isCount(v)) out.push(`${here}: must be a non-negative integer`);
        break;
    }
  }
  if (isCount(s.minItems) && isCount(s.maxItems) && (s.minItems as number) > (s.maxItems as number)) out.push(`${at}: minItems is above maxItems`);
  if (isCount(s.minLength) && isCount(s.maxLength) && (s.minLength as number) > (s.maxLength as number)) out.push(`${at}: minLength is above maxLength`);
}

function child(v: unknown, root: Obj, at: string, out: string[], seen: Set<Obj>): void {
  if (typeof v === "boolean") {
    if (!v) out.push(`${at}: the schema false (nothing valid) is not supported`);
    return;
  }
  if (!isObj(v)) out.push(`${at}: must be a schema (an object)`);
  else walk(v, root, at, out, seen);
}

/** Throws an XverseError listing the problems (`where` names the file or option the schema came from). */
export function assertSupportedSchema(schema: unknown, where: string): void {
  const problems = schemaProblems(schema);
  if (problems.length) {
    throw new XverseError("bad_schema", `${where}: this JSON schema cannot be enforced while decoding:\n  ${problems.join("\n  ")}\nRemove or replace those keywords (validate them on the result instead).`);
  }
}
