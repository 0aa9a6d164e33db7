/**
 * End to end on a real (tiny) model: fine-tuning stories260K on a small Human/Assistant dialogue set lowers the
 * held-out loss, the output directory loads like any model, and chat on it answers in the trained format.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildPrompt, loadChatSettings } from "../../src/chat/prompt.js";
import { generateText } from "../../src/generate/generate.js";
import { defaultModelDir } from "../../src/model/embedded.js";
import { loadModel } from "../../src/model/load.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { finetune } from "../../src/train/finetune.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const fixtures = join(root, "test/fixtures/train/");

test("stories260K: 200 steps of full fine-tuning lower held-out loss and teach the Human/Assistant format", async () => {
  const modelDir = defaultModelDir();
  const out = mkdtempSync(join(tmpdir(), "xverse-ft-stories-"));
  try {
    const r = await finetune({
      modelDir, outDir: out, tokenizer: loadTokenizer(modelDir),
      dataPath: fixtures + "dialogues-train.jsonl", evalDataPath: fixtures + "dialogues-eval.jsonl",
      train: {
        lr: 3e-3, epochs: 10, maxSteps: 200, batchSize: 2, gradAccum: 1, maxGradNorm: 1, schedule: "cosine",
        warmupSteps: 10, weightDecay: 0, seed: 1, evalEvery: 100, evalAtStart: true,
      },
    });
    const evals = r.state.history.filter((e) => e.evalLoss !== undefined).map((e) => e.evalLoss!);
    console.log(`# held-out loss per target token: ${evals.map((x) => x.toFixed(3)).join(" → ")}`);
    assert.equal(evals.length, 3);
    assert.ok(evals[2] < 0.5 * evals[0], `held-out loss ${evals[0]} → ${evals[2]}`);
    for (const f of ["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors", "training_loss.svg", "trainer_log.jsonl"]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    assert.equal(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).chat_format, r.data.format);

    const { model, tokenizer, generationConfig } = await loadModel(out, { backend: "ts" });
    const prompt = buildPrompt(tokenizer, [{ role: "user", content: "Where did Lily go?" }], { config: model.config, generationConfig, settings: loadChatSettings(out) });
    const g = await generateText(model, tokenizer, prompt.ids, { greedy: true, maxNewTokens: 40 });
    console.log(`# Human: Where did Lily go?  Assistant: ${g.text.trim()} (${g.finishReason})`);
    assert.equal(g.finishReason, "eos");
    assert.match(g.text, /went to the/);
    // the same through `xverse chat`, two turns
    const chat = spawnSync(process.execPath, [join(root, "bin/xverse.js"), "chat", "-m", out, "--greedy", "--quiet"],
      { input: "What did Tom find?\nIs Tom happy?\n", encoding: "utf8" });
    assert.equal(chat.status, 0, chat.stderr);
    console.log(`# xverse chat: ${JSON.stringify(chat.stdout)}`);
    assert.match(chat.stdout, /^Tom found a .+\.\n(.|\n)*Yes, Tom is very happy today\./);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
