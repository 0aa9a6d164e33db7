/** The data pipeline against golden_train's batches, and `xverse finetune` end to end (LoRA, resume, export). */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openSafetensors } from "../../src/io/safetensors.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { collate, encodeAll } from "../../src/train/data.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const tiny = join(root, "test/fixtures/golden/tiny-xverse");
const data = join(root, "test/fixtures/train/dialogues-train.jsonl");
const evalData = join(root, "test/fixtures/train/dialogues-eval.jsonl");
const xverse = (args: string[]) => spawnSync(process.execPath, [join(root, "bin/xverse.js"), ...args], { encoding: "utf8" });

test("v1 data encoding reproduces golden_train's batches id for id (prompt −100, eos labelled, right padding)", () => {
  const g = JSON.parse(readFileSync(join(tiny, "golden_train.json"), "utf8"));
  const conv = [
    ["How many legs does a horse have?", "A horse has four legs."], ["1955年谁是美国总统？", "德怀特·D·艾森豪威尔。"],
    ["馬の足は何本ありますか", "馬の足は4本あります。"], ["Combien de pattes a un cheval", "Un cheval a quatre pattes."],
  ].map(([user, assistant]) => ({ turns: [{ user, assistant }] }));
  const { examples } = encodeAll(loadTokenizer(tiny), conv, { format: "v1", eosId: 3 });
  for (let k = 0; k < 2; k++) {
    const b = collate(examples.slice(2 * k, 2 * k + 2), 1, 41); // golden pads both batches to 41
    const gb = g.batches[k];
    assert.deepEqual([...b.inputIds], gb.input_ids.flat());
    assert.deepEqual([...b.attentionMask!], gb.attention_mask.flat());
    assert.deepEqual([...b.labels!], gb.labels.flat());
  }
});

test("xverse finetune --lora writes a merged model and a PEFT adapter; --resume continues; --adapter-only", () => {
  const out = mkdtempSync(join(tmpdir(), "xverse-ft-cli-"));
  try {
    const args = ["finetune", "--data", data, "--eval-data", evalData, "--lora", "--rank", "4", "--targets", "q_proj,v_proj,down_proj",
      "--lr", "1e-3", "--batch-size", "4", "--max-steps", "3", "--save-every", "2", "--out", out];
    const r = xverse(args);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /LoRA r=4 α=8 on q_proj,v_proj,down_proj/);
    assert.match(r.stderr, /3\/3 .*loss \d/);
    assert.match(r.stderr, /eval loss [\d.]+ → [\d.]+/);
    for (const f of ["config.json", "model.safetensors", "tokenizer.json", "adapter/adapter_config.json", "adapter/adapter_model.safetensors", "training_loss.svg", "checkpoint/trainer_state.json"]) {
      assert.ok(existsSync(join(out, f)), f);
    }
    const st = openSafetensors(join(out, "adapter/adapter_model.safetensors"));
    assert.deepEqual(st.info("base_model.model.model.layers.4.mlp.down_proj.lora_A.weight").shape, [4, 172]);
    st.close();
    // more steps from the checkpoint: the step counter continues at 3
    const r2 = xverse([...args.slice(0, -4), "--max-steps", "5", "--resume", "--out", out]);
    assert.equal(r2.status, 0, r2.stderr);
    assert.match(r2.stderr, /5\/5 /);
    assert.doesNotMatch(r2.stderr, / 1\/5 /);
    const r3 = xverse(["finetune", "--data", data, "--lora", "--adapter-only", "--max-steps", "1", "--quiet", "--out", join(out, "a")]);
    assert.equal(r3.status, 0, r3.stderr);
    assert.deepEqual(readdirSync(join(out, "a")).filter((f) => !f.endsWith(".svg") && !f.endsWith(".jsonl") && f !== "checkpoint").sort(), ["adapter_config.json", "adapter_model.safetensors"]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("xverse finetune --export-deepspeed writes the LLaMA-Factory job", () => {
  const out = mkdtempSync(join(tmpdir(), "xverse-ds-"));
  try {
    execFileSync(process.execPath, [join(root, "bin/xverse.js"), "finetune", "--model", tiny, "--format", "v1", "--data", data,
      "--export-deepspeed", out, "--lr", "2e-5", "--batch-size", "4", "--grad-accum", "4", "--max-grad-norm", "0.5", "--quiet"]);
    const info = JSON.parse(readFileSync(join(out, "data/dataset_info.json"), "utf8"));
    assert.equal(info.xverse_sft.formatting, "sharegpt");
    const conv = JSON.parse(readFileSync(join(out, "data/xverse_sft.json"), "utf8"));
    assert.equal(conv.length, 160);
    assert.deepEqual(conv[2].conversations.map((m: { from: string }) => m.from), ["human", "gpt"]);
    const rows = readFileSync(join(out, "tokenized/train.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(rows.length, 160);
    assert.equal(rows[0].input_ids.length, rows[0].labels.length);
    assert.equal(rows[0].labels.at(-1), 3);
    const ds = JSON.parse(readFileSync(join(out, "ds_z2_config.json"), "utf8"));
    assert.equal(ds.zero_optimization.stage, 2);
    const yaml = readFileSync(join(out, "train_args.yaml"), "utf8");
    for (const line of ["stage: \"sft\"", "finetuning_type: \"full\"", "template: \"xverse\"", "learning_rate: 0.00002", "gradient_accumulation_steps: 4", "max_grad_norm: 0.5", "lr_scheduler_type: \"cosine\"", "per_device_train_batch_size: 4"]) {
      assert.ok(yaml.includes(line), `${line} in\n${yaml}`);
    }
    assert.match(readFileSync(join(out, "launch.sh"), "utf8"), /llamafactory-cli train train_args\.yaml/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("finetune errors name the problem", () => {
  assert.match(xverse(["finetune", "--out", "/tmp/x"]).stderr, /--data FILE is required/);
  assert.match(xverse(["finetune", "--data", "/nonexistent.jsonl", "--out", "/tmp/x"]).stderr, /cannot read data file \/nonexistent\.jsonl/);
  assert.match(xverse(["finetune", "--data", data, "--out", "/tmp/x", "--schedule", "cubic"]).stderr, /--schedule must be one of/);
  assert.match(xverse(["finetune", "--data", data, "--out", "/tmp/x", "--lora", "--targets", "qproj"]).stderr, /LoRA target "qproj" matches no linear layer/);
});

test("training prompts are the ids `xverse chat` feeds the model (v2 multi-turn, v1 newest turn, BOS models)", async () => {
  const { buildPrompt } = await import("../../src/chat/prompt.js");
  const { encodeConversation } = await import("../../src/train/data.js");
  const { loadConfig } = await import("../../src/config.js");
  for (const dir of [tiny, join(root, "models/stories260K")]) {
    const tok = loadTokenizer(dir), config = loadConfig(dir);
    const bos = dir === tiny ? null : tok.bosId;
    const turns = [{ user: "Where is the cat?", assistant: "The cat is in the garden." }, { user: "And the dog?", assistant: "Home." }];
    const e = encodeConversation(tok, { turns }, { format: "v2", eosId: config.eosTokenIds[0], bosId: bos });
    const p = buildPrompt(tok, [
      { role: "user", content: turns[0].user }, { role: "assistant", content: turns[0].assistant }, { role: "user", content: turns[1].user },
    ], { format: "v2", config, addBos: bos !== null }).ids;
    assert.deepEqual(e.ids.slice(0, p.length), p, dir);
    // inside that prefix only the first reply and its eos are trained on
    const reply0 = [...tok.encode(turns[0].assistant, { addSpecialTokens: false }).ids, config.eosTokenIds[0]];
    assert.deepEqual(e.labels.slice(0, p.length).filter((l) => l !== -100), reply0);
    const e1 = encodeConversation(tok, { turns: turns.slice(0, 1) }, { format: "v1", eosId: config.eosTokenIds[0], bosId: bos });
    const p1 = buildPrompt(tok, [{ role: "user", content: turns[0].user }], { format: "v1", config, addBos: bos !== null }).ids;
    assert.deepEqual(e1.ids.slice(0, p1.length), p1, dir);
    assert.ok(e1.labels.slice(0, p1.length).every((l) => l === -100));
    assert.notEqual(e1.labels[p1.length], -100);
  }
});

test("Ctrl-C stops after the current step with a checkpoint (exit 130); --resume finishes the run", async () => {
  const { spawn } = await import("node:child_process");
  const out = mkdtempSync(join(tmpdir(), "xverse-ft-int-"));
  try {
    const args = [join(root, "bin/xverse.js"), "finetune", "--data", data, "--max-steps", "400", "--batch-size", "1", "--out", out];
    const child = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    const code = await new Promise<number | null>((res) => {
      child.stderr.on("data", (b: Buffer) => {
        err += b.toString();
        if (/ 1\/400 /.test(err) && !child.killed) child.kill("SIGINT");
      });
      child.on("exit", (c) => res(c));
    });
    assert.equal(code, 130, err);
    assert.match(err, /stopped at step \d+; checkpoint saved/);
    const step = JSON.parse(readFileSync(join(out, "checkpoint", "trainer_state.json"), "utf8")).step;
    assert.ok(step >= 1 && step < 400, String(step));
    assert.ok(!existsSync(join(out, "model.safetensors")));
    const r = xverse(["finetune", "--data", data, "--max-steps", String(step + 2), "--batch-size", "1", "--out", out, "--resume", "--quiet"]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(out, "model.safetensors")));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("--val-size holds out a seeded, disjoint part of the data", async () => {
  const { prepareData } = await import("../../src/train/finetune.js");
  const { loadConfig } = await import("../../src/config.js");
  const tokenizer = loadTokenizer(tiny), cfg = loadConfig(tiny);
  const a = prepareData({ modelDir: tiny, dataPath: data, valSize: 16, tokenizer, format: "v1" }, cfg, 1);
  const b = prepareData({ modelDir: tiny, dataPath: data, valSize: 0.1, tokenizer, format: "v1" }, cfg, 1);
  assert.equal(a.train.length, 144);
  assert.equal(a.eval!.length, 16);
  assert.deepEqual(a.eval, b.eval);
  const key = (e: { ids: number[] }): string => e.ids.join(",");
  assert.equal(a.conversations.length, 144); // the held-out 16 are not in the training conversations
  assert.notDeepEqual(prepareData({ modelDir: tiny, dataPath: data, valSize: 16, tokenizer, format: "v1" }, cfg, 2).eval!.map(key), a.eval!.map(key));
});
