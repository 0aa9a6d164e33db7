/**
 * `--export-deepspeed DIR`: the same fine-tuning job, handed to LLaMA-Factory + DeepSpeed ZeRO-2 for GPUs.
 *
 *   DIR/data/xverse_sft.json        the conversations in ShareGPT form (LLaMA-Factory tokenizes them itself)
 *   DIR/data/dataset_info.json      its dataset_info entry ("xverse_sft")
 *   DIR/tokenized/train.jsonl       our exact input_ids / attention_mask / labels (−100 on prompts)
 *   DIR/tokenized/to_arrow.py       turns that into the datasets.save_to_disk layout LLaMA-Factory's
 *                                   --tokenized_path loads (a DatasetDict with "train")
 *   DIR/ds_z2_config.json           DeepSpeed ZeRO-2 config ("auto" values filled from the trainer arguments)
 *   DIR/train_args.yaml             the llamafactory-cli arguments equivalent to this run
 *   DIR/launch.sh                   the launch command (torchrun via llamafactory-cli, or the deepspeed launcher)
 *   DIR/README.md                   what each file is and how to run it
 */
import { mkdirSync, writeFileSync, chmodSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Conversation, Example } from "./data.js";
import type { LoraSettings } from "./finetune.js";
import type { TrainConfig } from "./loop.js";

export interface DeepspeedExport {
  outDir: string;
  modelDir: string;
  /** Where LLaMA-Factory should write its output. */
  trainOutputDir: string;
  format: "v1" | "v2";
  conversations: Conversation[];
  examples: Example[];
  train: TrainConfig;
  lora?: LoraSettings;
  cutoffLen: number;
  packing: boolean;
}

/** ShareGPT as LLaMA-Factory's "sharegpt" formatting reads it (tags from / value, human / gpt). */
export function toShareGpt(c: Conversation): Record<string, unknown> {
  const conversations = c.turns.flatMap((t) => [{ from: "human", value: t.user }, { from: "gpt", value: t.assistant }]);
  return c.system ? { conversations, system: c.system } : { conversations };
}

export const DATASET_INFO = {
  xverse_sft: {
    file_name: "xverse_sft.json",
    formatting: "sharegpt",
    columns: { messages: "conversations", system: "system" },
    tags: { role_tag: "from", content_tag: "value", user_tag: "human", assistant_tag: "gpt" },
  },
};

/** LLaMA-Factory's examples/deepspeed/ds_z2_config.json. */
export const DS_Z2_CONFIG = {
  train_batch_size: "auto",
  train_micro_batch_size_per_gpu: "auto",
  gradient_accumulation_steps: "auto",
  gradient_clipping: "auto",
  zero_allow_untested_optimizer: true,
  fp16: { enabled: "auto", loss_scale: 0, loss_scale_window: 1000, initial_scale_power: 16, hysteresis: 2, min_loss_scale: 1 },
  bf16: { enabled: "auto" },
  zero_optimization: {
    stage: 2, allgather_partitions: true, allgather_bucket_size: 5e8, overlap_comm: true, reduce_scatter: true,
    reduce_bucket_size: 5e8, contiguous_gradients: true, round_robin_gradients: true,
  },
};

const SCHEDULER: Record<string, string> = { constant: "constant", constant_with_warmup: "constant_with_warmup", linear: "linear", cosine: "cosine" };

function yaml(o: Record<string, unknown>): string {
  return Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}: ${typeof v === "string" ? JSON.stringify(v) : String(v)}`).join("\n") + "\n";
}

export function trainArgs(e: DeepspeedExport): Record<string, unknown> {
  const t = e.train;
  return {
    model_name_or_path: resolve(e.modelDir),
    trust_remote_code: true,
    stage: "sft",
    do_train: true,
    finetuning_type: e.lora ? "lora" : "full",
    lora_rank: e.lora?.r,
    lora_alpha: e.lora?.alpha,
    lora_dropout: e.lora?.dropout,
    lora_target: e.lora ? e.lora.targets.join(",") : undefined,
    deepspeed: resolve(e.outDir, "ds_z2_config.json"),
    dataset: "xverse_sft",
    dataset_dir: resolve(e.outDir, "data"),
    // our exact token ids; delete this line to let LLaMA-Factory tokenize data/xverse_sft.json with its template
    tokenized_path: resolve(e.outDir, "tokenized", "arrow"),
    template: "xverse",
    cutoff_len: e.cutoffLen,
    packing: e.packing,
    output_dir: resolve(e.trainOutputDir),
    logging_steps: 1,
    save_steps: t.saveEvery || 500,
    plot_loss: true,
    overwrite_output_dir: true,
    per_device_train_batch_size: t.batchSize,
    gradient_accumulation_steps: t.gradAccum,
    learning_rate: t.lr,
    num_train_epochs: t.epochs,
    max_steps: t.maxSteps,
    lr_scheduler_type: SCHEDULER[t.schedule],
    warmup_steps: t.warmupSteps,
    weight_decay: t.weightDecay,
    max_grad_norm: t.maxGradNorm > 0 ? t.maxGradNorm : 0,
    seed: t.seed,
    bf16: true,
    ddp_timeout: 180000000,
  };
}

const TO_ARROW = `# Converts train.jsonl (input_ids / attention_mask / labels, written by xverse-ts) into the layout
# LLaMA-Factory's --tokenized_path loads: datasets.DatasetDict({"train": ...}).save_to_disk(...).
import os, sys
from datasets import DatasetDict, load_dataset

here = os.path.dirname(os.path.abspath(__file__))
ds = load_dataset("json", data_files=os.path.join(here, "train.jsonl"), split="train")
DatasetDict({"train": ds}).save_to_disk(sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "arrow"))
`;

export function exportDeepspeed(e: DeepspeedExport): string[] {
  const dataDir = join(e.outDir, "data"), tokDir = join(e.outDir, "tokenized");
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(tokDir, { recursive: true });
  const files: [string, string][] = [
    [join(dataDir, "xverse_sft.json"), JSON.stringify(e.conversations.map(toShareGpt), null, 1) + "\n"],
    [join(dataDir, "dataset_info.json"), JSON.stringify(DATASET_INFO, null, 2) + "\n"],
    [join(tokDir, "train.jsonl"), e.examples.map((x) => JSON.stringify({ input_ids: x.ids, attention_mask: x.ids.map(() => 1), labels: x.labels })).join("\n") + "\n"],
    [join(tokDir, "to_arrow.py"), TO_ARROW],
    [join(e.outDir, "ds_z2_config.json"), JSON.stringify(DS_Z2_CONFIG, null, 2) + "\n"],
    [join(e.outDir, "train_args.yaml"), yaml(trainArgs(e))],
  ];
  const launch = `#!/bin/sh
# The xverse-ts fine-tuning run, on GPUs with LLaMA-Factory + DeepSpeed ZeRO-2.
# Needs: pip install llamafactory deepspeed   (one node; set NNODES / NODE_RANK / MASTER_ADDR for several)
set -e
cd "$(dirname "$0")"
python tokenized/to_arrow.py tokenized/arrow
FORCE_TORCHRUN=1 llamafactory-cli train train_args.yaml
# Equivalent with the DeepSpeed launcher and a LLaMA-Factory checkout:
#   deepspeed --num_gpus \${NUM_GPUS:-8} src/train.py train_args.yaml
`;
  files.push([join(e.outDir, "launch.sh"), launch]);
  files.push([join(e.outDir, "README.md"), readme(e)]);
  for (const [p, text] of files) writeFileSync(p, text);
  chmodSync(join(e.outDir, "launch.sh"), 0o755);
  return files.map(([p]) => p);
}

function readme(e: DeepspeedExport): string {
  return `# Fine-tuning job exported by xverse-ts

Run \`./launch.sh\` on a machine with GPUs, LLaMA-Factory and DeepSpeed installed. It converts the tokenized
data to the Arrow layout and starts \`llamafactory-cli train train_args.yaml\` (DeepSpeed ZeRO-2, bf16).

- \`tokenized/train.jsonl\`: ${e.examples.length} examples exactly as xverse-ts tokenized them (format ${e.format},
  prompts labelled -100, eos after each reply). \`train_args.yaml\` points \`tokenized_path\` at their Arrow form,
  so the GPU run trains on the same ids.
- \`data/xverse_sft.json\` + \`data/dataset_info.json\`: the same conversations in ShareGPT form. Remove
  \`tokenized_path\` from \`train_args.yaml\` to have LLaMA-Factory tokenize them with its \`xverse\` template
  (identical to xverse-ts's v1 format; v2 encodes "Human: ", the text and "Assistant: " separately, so only the
  tokenized path reproduces v2 exactly).
- \`ds_z2_config.json\`: ZeRO stage 2; its "auto" values come from the trainer arguments.
- Hyper-parameters mirror the xverse-ts run: lr ${e.train.lr}, ${e.train.schedule} schedule, warmup ${e.train.warmupSteps} steps,
  batch ${e.train.batchSize} × accumulation ${e.train.gradAccum} per GPU, max_grad_norm ${e.train.maxGradNorm}, ${e.train.epochs} epochs.
  The global batch is multiplied by the number of GPUs: divide gradient_accumulation_steps to keep it.
`;
}
