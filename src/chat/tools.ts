/**
 * Function calling, XVERSE style (xverse-facts §6; seed README "工具调用" example): there is no tool API,
 * the plugins are described in plain text in the first user message — a fixed instruction, a numbered list of
 * one JSON object per plugin ({name, description, parameters: [{name, description, required}]}), and a
 * current-time line — and the model answers with
 * `<|startofthink|>```JSON\n{"api_name": …, "parameters": {…}}```<|endofthink|>`. Tool results come back as
 * `exec` turns. Tools are accepted in OpenAI's `tools` form (JSON schema) or XVERSE's plugin form.
 */
import { XverseError } from "../errors.js";
import type { JsonSchema } from "./schema.js";
import type { ChatMessage } from "./types.js";

export const THINK_START = "<|startofthink|>";
export const THINK_END = "<|endofthink|>";

/** The seed README's instruction, word for word (it asks for api_name, url and parameters). */
export const TOOL_PROMPT_INTRO =
  "你是个大语言模型，有多种能力，可以通过插件集成api来回复用户的问题，还能解答用户使用模型遇到的问题和模型知识相关问答。" +
  "目前支持的插件信息如下，请自行判断是否需要调用插件来解决当前用户问题。" +
  "若需要调用插件，则需要将插件调用请求按照json格式给出，必须包含api_name、url、parameters字段，" +
  "并在其前后使用<|startofthink|>和<|endofthink|>作为标志。" +
  "然后你需要根据插件API调用结果生成合理的答复；若无需调用插件，则直接给出对应回复即可：";

export const TIME_LINE_PREFIX = "当前时间：";

/** One parameter in XVERSE's plugin form. `required` is a boolean or, as in the README, the string "True". */
export interface XversePluginParam {
  name: string;
  description?: string;
  required?: boolean | string;
  [k: string]: unknown;
}

export interface XversePlugin {
  name: string;
  description?: string;
  parameters: XversePluginParam[];
  [k: string]: unknown;
}

export interface OpenAITool {
  type: "function";
  function: { name: string; description?: string; parameters?: JsonSchema };
}

/** A tool in both shapes: the plugin object the prompt lists and the JSON schema its arguments must meet. */
export interface ToolSpec {
  name: string;
  description: string;
  plugin: XversePlugin;
  schema: JsonSchema;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function isRequired(r: unknown): boolean {
  return r === true || (typeof r === "string" && r.toLowerCase() === "true");
}

function fromSchema(name: string, description: string, schema: JsonSchema, where: string): ToolSpec {
  if (!isObj(schema)) throw new XverseError("bad_tools", `${where}: "parameters" must be a JSON schema object`);
  const props = isObj(schema.properties) ? (schema.properties as Record<string, JsonSchema>) : {};
  const required = new Set(Array.isArray(schema.required) ? (schema.required as string[]) : []);
  const parameters: XversePluginParam[] = Object.entries(props).map(([p, s]) => ({
    name: p,
    description: isObj(s) && typeof s.description === "string" ? s.description : "",
    required: required.has(p),
  }));
  return { name, description, plugin: { name, description, parameters }, schema };
}

function fromPlugin(p: Obj, where: string): ToolSpec {
  const params = p.parameters as unknown[];
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  params.forEach((q, i) => {
    if (!isObj(q) || typeof q.name !== "string") throw new XverseError("bad_tools", `${where}: parameters[${i}] needs a "name"`);
    // the plugin form has no types: a parameter may be any JSON value (the README's call passes numbers)
    properties[q.name] = typeof q.description === "string" ? { description: q.description } : {};
    if (isRequired(q.required)) required.push(q.name);
  });
  const name = p.name as string;
  return {
    name,
    description: typeof p.description === "string" ? p.description : "",
    plugin: p as XversePlugin,
    schema: { type: "object", properties, required },
  };
}

/**
 * Accepts an array (or `{"tools": [...]}`) of OpenAI tools (`{type: "function", function: {...}}`), bare
 * OpenAI functions (`{name, description, parameters: <schema>}`) or XVERSE plugins (`parameters: [...]`).
 */
export function normalizeTools(input: unknown): ToolSpec[] {
  const list = isObj(input) && Array.isArray(input.tools) ? input.tools : input;
  if (!Array.isArray(list)) throw new XverseError("bad_tools", `tools must be a JSON array (OpenAI "tools" or XVERSE plugins)`);
  const out = list.map((t, i): ToolSpec => {
    const where = `tools[${i}]`;
    if (isObj(t) && t.type === "function" && isObj(t.function)) t = t.function;
    if (!isObj(t) || typeof t.name !== "string" || !t.name) throw new XverseError("bad_tools", `${where}: each tool needs a "name"`);
    if (Array.isArray(t.parameters)) return fromPlugin(t, where);
    const desc = typeof t.description === "string" ? t.description : "";
    return fromSchema(t.name, desc, (t.parameters ?? { type: "object", properties: {} }) as JsonSchema, where);
  });
  const seen = new Set<string>();
  for (const t of out) {
    if (seen.has(t.name)) throw new XverseError("bad_tools", `two tools are named "${t.name}"`);
    seen.add(t.name);
  }
  return out;
}

/** JSON as Python's json.dumps(…, ensure_ascii=False) writes it (", " and ": "), the style of the README list. */
export function pyJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(pyJson).join(", ")}]`;
  if (isObj(v)) {
    return `{${Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `${JSON.stringify(k)}: ${pyJson(x)}`).join(", ")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** "YYYY-MM-DD HH:MM:SS" in local time, as the README's time line shows it. */
export function formatNow(now: Date): string {
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
}

/** The plugin block: instruction, numbered plugin list, current-time line (no trailing newline). */
export function toolPrompt(tools: readonly ToolSpec[], now: Date = new Date()): string {
  const list = tools.map((t, i) => `${i + 1}. ${pyJson(t.plugin)}`).join("\n");
  return `${TOOL_PROMPT_INTRO}\n${list}\n${TIME_LINE_PREFIX}${formatNow(now)}`;
}

/**
 * Puts the plugin block in front of the first user message, separated by "\n", as the README does; the
 * history is copied, not changed. With no user message yet, it becomes one.
 */
export function withTools(messages: readonly ChatMessage[], tools: readonly ToolSpec[], now: Date = new Date()): ChatMessage[] {
  const out = messages.map((m) => ({ ...m }));
  if (!tools.length) return out;
  const block = toolPrompt(tools, now);
  const i = out.findIndex((m) => m.role === "user");
  if (i < 0) out.push({ role: "user", content: block });
  else out[i] = { ...out[i], content: `${block}\n${out[i].content}` };
  return out;
}

/** A call written the way the model writes it, e.g. to put an OpenAI assistant tool_call back into history. */
export function formatToolCall(name: string, args: unknown): string {
  return `${THINK_START}\`\`\`JSON\n${JSON.stringify({ api_name: name, parameters: args ?? {} })}\`\`\`${THINK_END}`;
}
