/**
 * config.json and generation_config.json read from a model directory (Node); the parsing itself, which
 * browsers share, is in config-parse.ts and re-exported here.
 */
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { XverseError } from "./errors.js";
import { parseConfig, parseGenerationConfig, type ConfigOverrides, type GenerationConfig, type XverseConfig } from "./config-parse.js";

export * from "./config-parse.js";

type Json = Record<string, unknown>;

/** Reads a JSON object file; errors name the file and say it is unreadable or not JSON. */
export function readJsonFile(path: string): Json {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new XverseError("not_found", `cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error("expected a JSON object");
    return v as Json;
  } catch (e) {
    throw new XverseError("bad_json", `${path} is not valid JSON (${(e as Error).message}); fix or re-download the file`);
  }
}

export function loadConfig(dir: string, overrides: ConfigOverrides = {}): XverseConfig {
  const path = join(dir, "config.json");
  if (!existsSync(path)) throw new XverseError("not_found", `${dir} has no config.json: point --model at a model directory (config.json + weights + tokenizer.json)`);
  return parseConfig(readJsonFile(path), path, overrides);
}

export function loadGenerationConfig(dir: string, model?: XverseConfig): GenerationConfig {
  const path = join(dir, "generation_config.json");
  return parseGenerationConfig(existsSync(path) ? readJsonFile(path) : {}, model);
}
