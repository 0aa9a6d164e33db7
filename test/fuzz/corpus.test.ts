/**
 * The fuzz corpora as regression tests: every seed and every input a fuzz run found and we fixed
 * (fuzz/regressions/<target>/) goes through its target on the plain build — only XverseError or a 4xx may
 * escape, within a time bound. No instrumentation and no fuzzing engine needed; a few seconds in all.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { resolveRef } from "../../src/chat/json-prefix.js";
import { TARGETS, runTarget } from "./targets.js";

const repo = process.cwd();
const BOUND_MS = 2000;

for (const target of Object.keys(TARGETS)) {
  test(`fuzz corpus: ${target}`, () => {
    let n = 0;
    for (const kind of ["corpus", "regressions"]) {
      const dir = join(repo, "fuzz", kind, target);
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir).sort()) {
        const data = new Uint8Array(readFileSync(join(dir, f)));
        const t0 = performance.now();
        try {
          runTarget(target, data);
        } catch (e) {
          assert.fail(`${kind}/${target}/${f}: ${(e as Error)?.stack ?? String(e)}`);
        }
        const ms = performance.now() - t0;
        assert.ok(ms < BOUND_MS, `${kind}/${target}/${f} took ${ms.toFixed(0)} ms`);
        n++;
      }
    }
    assert.ok(n >= 2, `${target}: only ${n} corpus files`);
  });
}

test("fuzz finding: a $ref with a malformed %-escape is unresolved, not a URIError", () => {
  const root = { $defs: { n: { type: "null" }, "a b": { type: "string" } } };
  assert.equal(resolveRef(root, "#/%d"), null);
  assert.equal(resolveRef(root, "#/$defs/%E0%A4%A"), null);
  assert.deepEqual(resolveRef(root, "#/$defs/n"), { type: "null" });
  assert.deepEqual(resolveRef(root, "#/$defs/a%20b"), { type: "string" });
});
