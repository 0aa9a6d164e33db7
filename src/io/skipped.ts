/** Tensors a loader skips on purpose (XVERSE v1 saved the RoPE inverse frequencies as a persistent buffer). */
export function isSkippedTensor(name: string): boolean {
  return /(^|\.)rotary_emb\.(inv_freq|cos_cached|sin_cached)$/.test(name);
}
