/**
 * node-llama-cpp (peers/) as a test oracle: one CPU-only llama per test file, created on first use and disposed
 * when the file's tests end. One thread: the tests compare numbers, not speed.
 */
import { after } from "node:test";
import { importPeer } from "./peers.js";

let llamaP: Promise<any> | undefined;

// Registered when a test file imports this module (file scope): registering on first use would tie the disposal
// to whichever test asked first.
after(async () => {
  if (llamaP) await (await llamaP.catch(() => null))?.dispose();
});

/** The file's shared llama.cpp instance. */
export function llama(): Promise<any> {
  llamaP ??= importPeer("node-llama-cpp").then(({ getLlama, LlamaLogLevel }) =>
    getLlama({ gpu: false, build: "never", maxThreads: 1, logLevel: LlamaLogLevel.error, usePrebuiltBinaries: true }));
  return llamaP;
}
