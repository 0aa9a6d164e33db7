/**
 * ARM64 kernels under emulation: runs scripts/test-arm64.sh (npm run test:arm64), which cross-compiles the
 * native sources for aarch64 (the parity binary native/test/*.cc, and the addon from binding.gyp with node-gyp
 * --arch=arm64), and runs the parity binary under
 * qemu-aarch64 once per CPU model: cortex-a53 (base NEON), neoverse-n1 (+ dotprod), max (+ i8mm). Asserts on the
 * script's output: each model detected exactly its levels, and every kernel × level passed (bound 1e-5
 * normalized against the scalar kernels, kvWrite bytes identical — the x86 parity tests' bounds), with no kernel
 * missing from the table; the level-specific objects contain their instructions (sdot, smmla, fmlal), and qemu's
 * translation log shows they ran: sdot under neoverse-n1 and max, smmla and fmlal (f16 weights with FEAT_FHM,
 * checked as matmul.f16_fhm at neon_dotprod / neon_i8mm) under max only, none of them under cortex-a53.
 *
 * Skipped where the cross compiler or qemu is missing and cannot be installed (the script installs them with
 * apt-get when run as root, as in CI).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const script = join(root, "scripts", "test-arm64.sh");

function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`], { encoding: "utf8" }).status === 0;
}
const isRoot = process.getuid?.() === 0;
const tools = have("aarch64-linux-gnu-g++") && (have("qemu-aarch64-static") || have("qemu-aarch64"));
const skip =
  process.arch === "arm64"
    ? "arm64 host: the other native tests run the NEON levels directly (npm run test:arm64 runs the C++ parity natively)"
    : process.platform !== "linux"
    ? "needs Linux (cross compiler and qemu-user)"
    : !tools && !(isRoot && have("apt-get"))
      ? "aarch64-linux-gnu-g++ / qemu-aarch64 not installed (apt-get install g++-aarch64-linux-gnu qemu-user-static)"
      : false;

const KERNELS = [
  ...["f32", "bf16", "f16", "q8_row", "q4_row", "q4_group", "q8_group"].map((f) => `matmul.${f}`),
  ...["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"].map((f) => `matmul.${f}`),
  "quantize.q8_0",
  "quantize.q8_k",
  "quantize.intq",
  "rmsnorm",
  "rope",
  "add",
  "silu_mul",
  ...["f32", "f16", "q8_0"].flatMap((t) => [`kv_write.${t}`, `attention.${t}`]),
];
const MODELS: Record<string, { levels: string[]; sdot: boolean; smmla: boolean; fhm: boolean }> = {
  "cortex-a53": { levels: ["neon"], sdot: false, smmla: false, fhm: false },
  "neoverse-n1": { levels: ["neon", "neon_dotprod"], sdot: true, smmla: false, fhm: false },
  max: { levels: ["neon", "neon_dotprod", "neon_i8mm"], sdot: true, smmla: true, fhm: true },
};

test("arm64 kernels: every kernel × feature level matches the scalar reference under qemu", { skip, timeout: 900_000 }, () => {
  const r = spawnSync("bash", [script], { encoding: "utf8", timeout: 880_000, maxBuffer: 64 << 20 });
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`;
  assert.equal(r.status, 0, `test-arm64.sh failed (status ${r.status}):\n${out.slice(-6000)}`);

  // Split the output into one section per CPU model.
  const sections = out.split(/^== qemu -cpu /m).slice(1);
  const byModel = new Map(sections.map((s) => [s.slice(0, s.indexOf(" ")), s] as const));
  for (const [model, { levels, sdot, smmla, fhm }] of Object.entries(MODELS)) {
    const s = byModel.get(model);
    assert.ok(s, `no run for -cpu ${model}`);
    const ran = /^executed \(\S+\): sdot (\d+) smmla (\d+) fmla (\d+) fmlal (\d+)$/m.exec(s);
    assert.ok(ran, `-cpu ${model}: no executed-instruction counts`);
    assert.equal(Number(ran[1]) > 0, sdot, `-cpu ${model}: sdot executed ${ran[1]} times`);
    assert.equal(Number(ran[2]) > 0, smmla, `-cpu ${model}: smmla executed ${ran[2]} times`);
    assert.ok(Number(ran[3]) > 0, `-cpu ${model}: no fmla executed`);
    assert.equal(Number(ran[4]) > 0, fhm, `-cpu ${model}: fmlal executed ${ran[4]} times`);
    assert.match(s, new RegExp(`^levels: ${levels.join(" ")}$`, "m"), `-cpu ${model}: detected levels`);
    const cells = new Map<string, string>();
    for (const m of s.matchAll(/^RESULT (\S+) (\S+) (pass|fail) (\d+) (\d+) (\S+)$/gm)) {
      cells.set(`${m[1]} ${m[2]}`, m[3]);
      assert.equal(m[3], "pass", `-cpu ${model}: ${m[1]} at ${m[2]}: ${m[5]} of ${m[4]} checks failed (worst ${m[6]})`);
    }
    for (const k of KERNELS)
      for (const l of levels) assert.equal(cells.get(`${k} ${l}`), "pass", `-cpu ${model}: ${k} at ${l} missing`);
    // f16 on FMLAL: checked where the CPU has FEAT_FHM (levels above neon), a skip line elsewhere
    for (const l of levels.filter((l) => l !== "neon")) {
      for (const k of ["matmul.f16_fhm", "matmul.f16_fhm~f32"])
        assert.equal(cells.get(`${k} ${l}`), fhm ? "pass" : undefined, `-cpu ${model}: ${k} at ${l}`);
      if (!fhm) assert.match(s, new RegExp(`^skip matmul\\.f16_fhm at ${l}: `, "m"), `-cpu ${model}: no skip line at ${l}`);
    }
  }

  // The dotprod / i8mm objects really use those instructions, and the base-NEON one does not.
  const ins = out.match(/^test-arm64: instructions — (.*)$/m)?.[1] ?? "";
  const n = (obj: string, op: string) => Number(new RegExp(`${obj}: (?:[a-z0-9]+ \\d+ )*?${op} (\\d+)`).exec(ins)?.[1] ?? NaN);
  assert.ok(n("legacy_dot", "sdot") > 0, ins);
  assert.ok(n("legacy_i8mm", "smmla") > 0, ins);
  assert.ok(n("kquants_dot", "sdot") > 0, ins);
  assert.ok(n("kquants_i8mm", "smmla") > 0, ins);
  assert.ok(n("intq_dot", "sdot") > 0, ins);
  assert.ok(n("intq_i8mm", "smmla") > 0, ins);
  assert.ok(n("matmul_fhm", "fmlal") > 0, ins);
  assert.equal(n("legacy_neon", "sdot"), 0, ins);
  const addon = /^test-arm64: addon built by node-gyp for arm64 \(\d+ bytes; sdot (\d+), smmla (\d+), fmlal (\d+)\)$/m.exec(out);
  assert.ok(addon, "the arm64 addon was not built");
  assert.ok(Number(addon[1]) > 0 && Number(addon[2]) > 0 && Number(addon[3]) > 0, addon[0]);
});
