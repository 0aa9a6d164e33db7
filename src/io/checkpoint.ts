/**
 * A checkpoint directory as one TensorSource, in the layouts Hugging Face repositories use:
 *   model.safetensors | model.safetensors.index.json + shards | pytorch_model.bin.index.json + shards | pytorch_model.bin
 * (first match wins). Shards are opened on first use and stay open until close(). Stale RoPE buffers that older
 * modeling code saved (rotary_emb.inv_freq / cos_cached / sin_cached) are hidden on purpose: the model recomputes them.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { XverseError } from "../errors.js";
import type { Tensor } from "../tensor.js";
import { openSafetensors } from "./safetensors.js";
import type { TensorInfo, TensorSource } from "./source.js";
import type { OpenBytesOptions } from "./mapped-file.js";
import { openTorchBin } from "./torch-bin.js";
import { isSkippedTensor } from "./skipped.js";

// (in its own file so the browser-safe model code can use it without this file's fs imports)
export { isSkippedTensor } from "./skipped.js";

/** Which layout a directory uses, and the files that matter. */
export interface CheckpointLayout {
  kind: "safetensors" | "safetensors-sharded" | "bin-sharded" | "bin";
  /** The directory holding the weights (a snapshot folder when given a Hugging Face cache repo folder). */
  dir: string;
  /** The weights file, or the index file for sharded layouts. */
  file: string;
}

const CANDIDATES: Array<[CheckpointLayout["kind"], string]> = [
  ["safetensors", "model.safetensors"],
  ["safetensors-sharded", "model.safetensors.index.json"],
  ["bin-sharded", "pytorch_model.bin.index.json"],
  ["bin", "pytorch_model.bin"],
];

/** `<cacheRoot>/models--org--name`: where huggingface_hub keeps a repository (cacheRoot is e.g. ~/.cache/huggingface/hub). */
export function hfCacheRepoDir(cacheRoot: string, repoId: string): string {
  return join(cacheRoot, `models--${repoId.split("/").join("--")}`);
}

/**
 * A Hugging Face cache repo folder (refs/, snapshots/<commit>/, blobs/) resolves to the snapshot that refs/main
 * names, or to the only snapshot; any other directory is returned as is.
 */
export function resolveModelDir(dir: string): string {
  const snaps = join(dir, "snapshots");
  if (!existsSync(snaps) || CANDIDATES.some(([, n]) => existsSync(join(dir, n)))) return dir;
  const ref = join(dir, "refs", "main");
  if (existsSync(ref)) {
    const snap = join(snaps, readFileSync(ref, "utf8").trim());
    if (existsSync(snap)) return snap;
  }
  const all = readdirSync(snaps);
  if (all.length === 1) return join(snaps, all[0]);
  throw new XverseError("not_found",
    `${dir} is a Hugging Face cache folder with ${all.length} snapshots (${all.join(", ") || "none"}) and no usable refs/main; pass the snapshot directory itself`);
}

export function detectCheckpoint(dirIn: string): CheckpointLayout {
  let st;
  const dir = existsSync(dirIn) && statSync(dirIn).isDirectory() ? resolveModelDir(dirIn) : dirIn;
  try {
    st = statSync(dir);
  } catch {
    throw new XverseError("not_found", `checkpoint directory ${dir} does not exist; pass a directory holding config.json and the weights`);
  }
  if (!st.isDirectory()) throw new XverseError("not_found", `${dir} is not a directory; pass the checkpoint directory`);
  for (const [kind, name] of CANDIDATES) {
    const file = join(dir, name);
    if (existsSync(file)) return { kind, dir, file };
  }
  throw new XverseError("not_found",
    `no model.safetensors, model.safetensors.index.json, pytorch_model.bin.index.json or pytorch_model.bin in ${dir}; ` +
    `is this a Hugging Face checkpoint directory (with the weights downloaded)?`);
}

/** Opens one weights file by its extension. */
export function openWeightsFile(file: string, opts?: OpenBytesOptions): TensorSource {
  return file.endsWith(".safetensors") ? openSafetensors(file, opts) : openTorchBin(file);
}

/** Hides skipped tensors from a single-file source. */
function filtered(src: TensorSource, file: string): TensorSource {
  const names = src.names().filter((n) => !isSkippedTensor(n));
  const keep = new Set(names);
  const check = (name: string) => {
    if (!keep.has(name)) throw new XverseError("missing_tensor", `${file}: no tensor named "${name}"`);
  };
  return {
    names: () => names.slice(),
    has: (name) => keep.has(name),
    info: (name) => { check(name); return src.info(name); },
    read: (name) => { check(name); return src.read(name); },
    metadata: src.metadata ? () => src.metadata!() : undefined,
    close: () => src.close(),
  };
}

function readIndex(indexFile: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(indexFile, "utf8"));
  } catch (e) {
    throw new XverseError("bad_checkpoint", `${indexFile}: cannot read the shard index (${(e as Error).message}); re-download it`, { cause: e });
  }
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) {
    throw new XverseError("bad_checkpoint", `${indexFile}: no "weight_map" object; this is not a Hugging Face shard index`);
  }
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    // A shard must be a plain file name next to the index: no paths that could point elsewhere.
    if (typeof shard !== "string" || shard === "" || shard !== basename(shard) || shard === "." || shard === "..") {
      throw new XverseError("bad_checkpoint", `${indexFile}: weight_map["${name}"] is ${JSON.stringify(shard)}, not a shard file name`);
    }
    map.set(name, shard);
  }
  return map;
}

/** A sharded checkpoint resolved through its index's weight_map. */
function openSharded(dir: string, indexFile: string, opts?: OpenBytesOptions): TensorSource {
  const weightMap = readIndex(indexFile);
  for (const shard of new Set(weightMap.values())) {
    if (!existsSync(join(dir, shard))) {
      throw new XverseError("not_found",
        `${indexFile} names shard ${shard}, which is missing from ${dir}; download the missing file (or fix the index)`);
    }
  }
  const names = [...weightMap.keys()].filter((n) => !isSkippedTensor(n));
  const shards = new Map<string, TensorSource>();
  let open = true;
  const shardFor = (name: string): TensorSource => {
    if (!open) throw new XverseError("closed", `${dir}: checkpoint used after close()`);
    const shard = weightMap.get(name);
    if (shard === undefined || isSkippedTensor(name)) {
      throw new XverseError("missing_tensor", `${dir}: no tensor named "${name}" in ${basename(indexFile)}`);
    }
    let src = shards.get(shard);
    if (!src) {
      src = openWeightsFile(join(dir, shard), opts);
      shards.set(shard, src);
    }
    if (!src.has(name)) {
      throw new XverseError("bad_checkpoint",
        `${basename(indexFile)} says tensor "${name}" is in ${shard}, but ${join(dir, shard)} does not contain it; the index and shards do not match`);
    }
    return src;
  };
  return {
    names: () => names.slice(),
    has: (name) => weightMap.has(name) && !isSkippedTensor(name),
    info: (name): TensorInfo => shardFor(name).info(name),
    read: (name): Tensor => shardFor(name).read(name),
    metadata: () => {
      const m = (JSON.parse(readFileSync(indexFile, "utf8")) as { metadata?: Record<string, unknown> }).metadata;
      return { ...(m ?? {}) };
    },
    close: () => {
      open = false;
      for (const s of shards.values()) s.close();
      shards.clear();
    },
  };
}

/**
 * Opens the weights of a checkpoint directory (or a single .safetensors / .bin file) as a lazy TensorSource.
 * Nothing but headers and the pickle are read here; `read(name)` loads one tensor. `opts` reaches the
 * safetensors files (e.g. { mmap: true }: float tensors as views into the mapped file).
 */
export function openCheckpoint(dirOrFile: string, opts?: OpenBytesOptions): TensorSource {
  const path = resolve(dirOrFile);
  if (existsSync(path) && statSync(path).isFile()) {
    // A shard index passed directly stands for its directory.
    if (path.endsWith(".index.json")) return openSharded(dirname(path), path, opts);
    return filtered(openWeightsFile(path, opts), path);
  }
  const layout = detectCheckpoint(path);
  switch (layout.kind) {
    case "safetensors":
    case "bin":
      return filtered(openWeightsFile(layout.file, opts), layout.file);
    case "safetensors-sharded":
    case "bin-sharded":
      return openSharded(layout.dir, layout.file, opts);
  }
}
