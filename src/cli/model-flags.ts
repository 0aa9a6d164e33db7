/**
 * Flags shared by every command that loads a model: --model, --backend, --threads, --quantize, --group-size,
 * --rope-theta, --rope-scaling. Parsed here once; commands spread MODEL_FLAGS into their parseFlags options.
 */
import { numberFlag } from "./command.js";
import { parseRopeScalingFlag, type ConfigOverrides } from "../config.js";
import { XverseError } from "../errors.js";
import type { LoadModelOptions } from "../model/load.js";
import { parseKvType } from "../kv/layout.js";
import { loadProgress } from "./progress.js";
import { parseSource, resolveModelArg } from "./hub-env.js";

/** "4G", "512M", "1.5GB", "1000000" → bytes. */
export function parseSize(s: string, flag: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(s);
  if (!m) throw new XverseError("bad_flag", `${flag}: "${s}" is not a size (e.g. 4G, 512M, 1000000)`);
  const mult = { "": 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as "" | "k" | "m" | "g" | "t"];
  const n = Math.floor(Number(m[1]) * mult);
  if (!(n >= 1)) throw new XverseError("bad_flag", `${flag}: "${s}" must be at least 1 byte`);
  return n;
}

export const MODEL_FLAGS = {
  model: { type: "string", short: "m" },
  backend: { type: "string" },
  threads: { type: "string" },
  quantize: { type: "string" },
  "group-size": { type: "string" },
  "rope-theta": { type: "string" },
  "rope-scaling": { type: "string" },
  adapter: { type: "string" },
  "kv-type": { type: "string" },
  "ctx-size": { type: "string" },
  "kv-budget": { type: "string" },
  "no-mmap": { type: "boolean" },
  pull: { type: "boolean" },
  source: { type: "string" },
} as const;

export const MODEL_FLAGS_HELP = `Model options:
  -m, --model PATH         model directory (config.json, weights, tokenizer.json) or a .gguf file;
                           a GGUF cut into byte-split parts loads from its first part (x.gguf.aa)
                           or the stem (x.gguf) (default: the embedded stories260K model);
                           or a repository id ORG/NAME[@REVISION][:TAG] from the Hugging Face cache
                           (see xverse pull; TAG picks a GGUF by name, e.g. :q4_k_m)
  --pull                   with --model ORG/NAME: download it first when it is not in the cache
  --source hf|modelscope   where --pull downloads from (default hf)
  --backend auto|ts|native|webgpu
                           kernels to run on (default auto: native when it loads, else TypeScript;
                           webgpu: the GPU through the optional \`webgpu\` package, never picked by auto)
  --threads N              native thread count (default: physical cores)
  --quantize 8|4           quantize the seven projections of every layer while loading
  --group-size 32|64|128   with --quantize 4: one scale per group instead of per row
  --rope-theta X           override rope_theta (XVERSE-13B-256K needs 500000)
  --rope-scaling S         override rope_scaling: none | linear:F | dynamic:F (13B-256K: dynamic:2)
  --adapter DIR            apply a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors)
  --kv-type f16|q8_0|f32   how the KV cache stores keys and values (default f16, as llama.cpp;
                           q8_0 halves it again; f32 is exact)
  --ctx-size N             most tokens one sequence may hold (default: the model's
                           max_position_embeddings; 13B-256K: up to 262144)
  --kv-budget SIZE         most memory a shared KV pool (serve, chat, eval) may take, e.g. 4G or 512M
                           (default: 4 × ctx-size tokens, at most 8 GiB; allocated as used)
  --no-mmap                read the weights into memory instead of mapping the file(s)`;

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export function modelPath(v: Values): string | undefined {
  return typeof v.model === "string" ? v.model : undefined;
}

/** --model after repository-id resolution (the cache; a download only with --pull). */
export async function resolveModelFlag(v: Values): Promise<string | undefined> {
  return resolveModelArg(modelPath(v), { pull: v.pull === true, source: parseSource(v.source) });
}

export function loadOptionsFromFlags(v: Values): LoadModelOptions {
  const backend = (v.backend as string | undefined) ?? "auto";
  if (!["auto", "ts", "native", "webgpu"].includes(backend)) throw new XverseError("bad_flag", `--backend must be auto, ts, native or webgpu, got "${backend}"`);
  const quantize = numberFlag(v.quantize as string | undefined, "--quantize", { int: true });
  if (quantize !== undefined && quantize !== 4 && quantize !== 8) throw new XverseError("bad_flag", `--quantize must be 8 or 4, got ${quantize}`);
  const overrides: ConfigOverrides = {};
  const theta = numberFlag(v["rope-theta"] as string | undefined, "--rope-theta", { min: 1 });
  if (theta !== undefined) overrides.ropeTheta = theta;
  if (typeof v["rope-scaling"] === "string") overrides.ropeScaling = parseRopeScalingFlag(v["rope-scaling"]);
  return {
    backend: backend as "auto" | "ts" | "native" | "webgpu",
    threads: numberFlag(v.threads as string | undefined, "--threads", { int: true, min: 1, max: 256 }),
    quantize: quantize as 0 | 4 | 8 | undefined,
    groupSize: numberFlag(v["group-size"] as string | undefined, "--group-size", { int: true, min: 0 }),
    overrides,
    adapter: typeof v.adapter === "string" ? v.adapter : undefined,
    kvType: typeof v["kv-type"] === "string" ? parseKvType(v["kv-type"]) : undefined,
    ctxSize: numberFlag(v["ctx-size"] as string | undefined, "--ctx-size", { int: true, min: 1, max: 2 ** 24 }),
    kvBudget: typeof v["kv-budget"] === "string" ? parseSize(v["kv-budget"], "--kv-budget") : undefined,
    mmap: v["no-mmap"] === true ? false : undefined,
    // a line on a terminal for models over 1 GB (serve drops it: its load runs in another thread)
    onProgress: loadProgress(),
  };
}
