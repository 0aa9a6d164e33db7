/**
 * What /local runs the model with, behind one interface (Host), in two places: LocalHost holds the backend, the
 * model and a LocalEngine in the current global (the Web Worker web/local-worker.ts, or the tab itself when no
 * worker can start, or with ?worker=0); WorkerHost (worker-host.ts) is the page's proxy to a LocalHost in a worker.
 * Switching models ends the old model's runs (as Stop), frees its GPU weights and replaces a WebGPU backend with
 * a fresh device, which takes the old one's KV cache and every other buffer with it.
 */
import { pickBackend, type PickedBackend } from "../src/browser/backend.js";
import { disposeModel, loadModelFiles, modelFilesAt, modelFilesFrom, type ModelFiles } from "../src/browser/load.js";
import type { Backend } from "../src/backend/backend.js";
import { blobReader } from "../src/io/byte-reader.js";
import type { Engine } from "./engine.js";
import { LocalEngine } from "./local-engine.js";
import { webGpuFactory } from "./webgpu.js";

/** A model directory over HTTP (absolute URL), or files picked from disk. */
export type ModelSource = { url: string } | { files: File[] };

export interface BackendInfo {
  kind: "webgpu" | "ts";
  reason: string;
}

export interface ModelInfo {
  name: string;
  format: "gguf" | "safetensors";
  layers: number;
  hidden: number;
  vocab: number;
  bytes: number;
  /** Matrices per weight format, e.g. { q8_0: 32, f16: 5 }. */
  formats: Record<string, number>;
}

export interface StartOptions {
  /** Whether the page has navigator.gpu (a worker asks its own navigator only when the page has one). */
  gpu: boolean;
  prefer?: "ts";
}

export interface Host {
  /** "worker" or "tab": where the model runs. */
  readonly where: "worker" | "tab";
  readonly engine: Engine;
  start(o: StartOptions): Promise<BackendInfo>;
  /** Loads `src` in place of the current model; returns the model and the backend it runs on. */
  load(src: ModelSource, onProgress: (done: number, total: number) => void): Promise<{ model: ModelInfo; backend: BackendInfo }>;
}

export class LocalHost implements Host {
  readonly engine = new LocalEngine();
  private picked: PickedBackend | null = null;
  private opts: StartOptions = { gpu: false };
  /** Whether the backend has held a model (a fresh one is needed for the next). */
  private used = false;

  constructor(readonly where: "worker" | "tab") {}

  private async pick(): Promise<BackendInfo> {
    const gpu = this.opts.gpu ? (navigator as Navigator & { gpu?: unknown }).gpu : undefined;
    this.picked = await pickBackend({ gpu, webgpu: webGpuFactory, prefer: this.opts.prefer });
    this.used = false;
    return { kind: this.picked.kind, reason: this.picked.reason };
  }

  start(o: StartOptions): Promise<BackendInfo> {
    this.opts = o;
    return this.pick();
  }

  /** Ends the runs on the current model and frees it; a WebGPU backend that held it is replaced. */
  private async free(): Promise<void> {
    const old = await this.engine.release();
    if (old) disposeModel(old);
    if (!this.used || this.picked?.kind !== "webgpu") return;
    (this.picked.backend as Backend & { destroy?: () => void }).destroy?.();
    await this.pick();
  }

  /** Loads one at a time: a file picked while another model loads waits for it, then replaces it. */
  load(src: ModelSource, onProgress: (done: number, total: number) => void): Promise<{ model: ModelInfo; backend: BackendInfo }> {
    const next = this.loading.then(() => this.loadNow(src, onProgress));
    this.loading = next.catch(() => {});
    return next;
  }

  private loading: Promise<unknown> = Promise.resolve();

  private async loadNow(src: ModelSource, onProgress: (done: number, total: number) => void): Promise<{ model: ModelInfo; backend: BackendInfo }> {
    if (!this.picked) throw new Error("no backend yet: start() first");
    const files: ModelFiles = "url" in src ? await modelFilesAt(src.url) : modelFilesFrom(src.files.map((f) => blobReader(f, f.name)));
    await this.free();
    this.used = true;
    const m = await loadModelFiles(files, { backend: this.picked.backend, onProgress });
    this.engine.model = m;
    const c = m.config;
    return {
      model: { name: files.weights.name.replace(/^.*\//, ""), format: m.format, layers: c.numLayers, hidden: c.hiddenSize, vocab: c.vocabSize, bytes: m.bytes, formats: m.formats },
      backend: { kind: this.picked.kind, reason: this.picked.reason },
    };
  }
}
