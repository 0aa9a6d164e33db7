// Points Dawn at Mesa's lavapipe (a CPU Vulkan driver) for the shader-f16 tests: SwiftShader, the default test
// driver, has no shader-f16. Imported before ./gpu.js (which sets SwiftShader only when VK_ICD_FILENAMES is
// unset). Mesa ≥ 24 exposes shaderFloat16 + 16-bit storage; on Debian 12 that is bookworm-backports'
// mesa-vulkan-drivers (.ci/run installs it).
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const ICD_DIR = "/usr/share/vulkan/icd.d";

/** lavapipe's ICD file (lvp_icd.json, or lvp_icd.<arch>.json), or null. */
export const LAVAPIPE_ICD: string | null = existsSync(ICD_DIR)
  ? (readdirSync(ICD_DIR).filter((f) => /^lvp_icd(\.[\w-]+)?\.json$/.test(f)).map((f) => join(ICD_DIR, f))[0] ?? null)
  : null;

if (LAVAPIPE_ICD) process.env.VK_ICD_FILENAMES = LAVAPIPE_ICD;
