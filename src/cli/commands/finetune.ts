import { resolve } from "node:path";
import { loadConfig } from "../../config.js";
import { XverseError } from "../../errors.js";
import { defaultModelDir } from "../../model/embedded.js";
import { loadTokenizer } from "../../tokenizer/load.js";
import { exportDeepspeed } from "../../train/deepspeed-export.js";
import { finetune, prepareData, type LoraSettings } from "../../train/finetune.js";
import { formatProgress, totalSteps, type LogEntry, type TrainConfig } from "../../train/loop.js";
import { parseSchedule } from "../../train/schedule.js";
import { numberFlag, parseFlags, type Command } from "../command.js";
import { resolveModelFlag } from "../model-flags.js";

const help = `Usage: xverse finetune --data FILE --out DIR [--model DIR] [options]

Supervised fine-tuning on the CPU, full or LoRA, with PyTorch's semantics (AdamW, clip_grad_norm_,
transformers' schedules). Prompts are built as \`xverse chat\` builds them (XVERSE v1 / v2 format); prompt
tokens are masked out and every reply ends with eos.

Data (--data, --eval-data): .jsonl or .json with records like
  {"id": "1", "conversations": [{"from": "human", "value": "…"}, {"from": "bot", "value": "…"}]}
  ShareGPT ("from": "human"/"gpt"/"system"), {"messages": [{"role", "content"}]}, or Alpaca
  {"instruction", "input", "output", "history"}.

Output (--out DIR): a normal model directory (config.json, generation_config.json, tokenizer files,
model.safetensors) that every command loads; with --lora also DIR/adapter/ in PEFT's layout
(--adapter-only writes just the adapter into DIR). Plus training_loss.svg, trainer_log.jsonl and
DIR/checkpoint/ (resumable: rerun with --resume, e.g. after a crash or with more --epochs).

Options:
  --model DIR            model to start from (default: the embedded stories260K), or ORG/NAME from
                         the Hugging Face cache (see xverse pull; --pull downloads it first)
  --data FILE            training conversations
  --eval-data FILE       held-out conversations: eval loss every --eval-every steps and at the end
  --val-size N           without --eval-data: hold out N conversations (or a fraction if < 1) for eval
  --out DIR              where the result goes
  --lora                 train LoRA adapters instead of all weights
  --rank R               LoRA rank (default 8)
  --alpha A              LoRA alpha (default 2 × rank); scaling = alpha / rank
  --lora-dropout P       dropout on the adapter input (default 0)
  --targets LIST         LoRA target modules, comma-separated (default q_proj,v_proj; "all" = every projection)
  --adapter DIR          continue training an existing PEFT adapter
  --adapter-only         with --lora: write only the PEFT adapter, not a merged model
  --lr X                 peak learning rate (default 2e-5 full, 1e-4 LoRA)
  --epochs N             passes over the data (default 3)
  --max-steps N          stop after N optimizer steps
  --batch-size N         sequences per micro-batch (default 4)
  --grad-accum N         micro-batches per optimizer step (default 1)
  --max-grad-norm X      clip the total gradient norm (default 1.0; 0 = off)
  --schedule NAME        constant | constant_with_warmup | linear | cosine (default cosine)
  --warmup N             warmup steps (default 0)
  --warmup-ratio X       warmup as a fraction of all steps (instead of --warmup)
  --weight-decay X       AdamW weight decay (default 0)
  --seed N               data order, LoRA init and dropout (default 42)
  --format v1|v2         chat format of the data (default: config.json chat_format, else v2)
  --max-length N         cut examples to N tokens (default max_position_embeddings)
  --packing              concatenate examples into blocks of --max-length
  --recompute            recompute activations per layer in backward (less memory, ~30% slower)
  --eval-every N         evaluation interval in optimizer steps (default: 10 evaluations per run)
  --save-every N         checkpoint interval in optimizer steps (default: at the end only)
  --resume               continue from DIR/checkpoint
  --save-dtype T         auto | f32 | bf16 (default auto: the input checkpoint's)
  --export-deepspeed D   do not train here: write the LLaMA-Factory + DeepSpeed ZeRO-2 job to D
                         (tokenized data, dataset_info.json, ds_z2_config.json, train_args.yaml, launch.sh)
  --quiet                no progress output

Ctrl-C finishes the current step, saves DIR/checkpoint and exits (status 130); rerun with --resume.`;

export const command: Command = {
  summary: "fine-tune a model (full or LoRA) on conversation data",
  help,
  async run(argv) {
    const { values: v } = parseFlags(argv, {
      model: { type: "string" }, pull: { type: "boolean" }, source: { type: "string" }, data: { type: "string" }, "eval-data": { type: "string" }, "val-size": { type: "string" }, out: { type: "string" },
      lora: { type: "boolean" }, rank: { type: "string" }, alpha: { type: "string" }, "lora-dropout": { type: "string" },
      targets: { type: "string" }, adapter: { type: "string" }, "adapter-only": { type: "boolean" },
      lr: { type: "string" }, epochs: { type: "string" }, "max-steps": { type: "string" }, "batch-size": { type: "string" },
      "grad-accum": { type: "string" }, "max-grad-norm": { type: "string" }, schedule: { type: "string" },
      warmup: { type: "string" }, "warmup-ratio": { type: "string" }, "weight-decay": { type: "string" },
      seed: { type: "string" }, format: { type: "string" }, "max-length": { type: "string" }, packing: { type: "boolean" },
      recompute: { type: "boolean" }, "eval-every": { type: "string" }, "save-every": { type: "string" },
      resume: { type: "boolean" }, "save-dtype": { type: "string" }, "export-deepspeed": { type: "string" }, quiet: { type: "boolean" },
    }, false);
    const s = (k: string): string | undefined => v[k] as string | undefined;
    const modelDir = (await resolveModelFlag(v)) ?? defaultModelDir();
    const dataPath = s("data"), outDir = s("out"), exportDir = s("export-deepspeed");
    if (!dataPath) throw new XverseError("bad_flag", "--data FILE is required (conversations as .jsonl or .json)");
    if (!outDir && !exportDir) throw new XverseError("bad_flag", "--out DIR is required (where the fine-tuned model goes)");
    if (outDir && resolve(outDir) === resolve(modelDir)) throw new XverseError("bad_flag", "--out must differ from --model (the base model is never overwritten)");
    const useLora = v.lora === true || s("adapter") !== undefined;
    if (!useLora && (v["adapter-only"] || s("rank") || s("targets"))) throw new XverseError("bad_flag", "--rank, --targets and --adapter-only need --lora");
    const rank = numberFlag(s("rank"), "--rank", { int: true, min: 1 }) ?? 8;
    const lora: LoraSettings | undefined = useLora ? {
      r: rank,
      alpha: numberFlag(s("alpha"), "--alpha", { min: 0 }) ?? 2 * rank,
      dropout: numberFlag(s("lora-dropout"), "--lora-dropout", { min: 0, max: 0.99 }) ?? 0,
      targets: (s("targets") ?? "q_proj,v_proj").split(",").map((x) => x.trim()).filter(Boolean),
      from: s("adapter"),
      adapterOnly: v["adapter-only"] === true,
    } : undefined;
    const saveDtype = s("save-dtype") ?? "auto";
    if (!["auto", "f32", "bf16"].includes(saveDtype)) throw new XverseError("bad_flag", `--save-dtype must be auto, f32 or bf16, got "${saveDtype}"`);
    const format = s("format");
    if (format !== undefined && format !== "v1" && format !== "v2") throw new XverseError("bad_flag", `--format must be v1 or v2, got "${format}"`);

    const train: TrainConfig = {
      lr: numberFlag(s("lr"), "--lr", { min: 0 }) ?? (useLora ? 1e-4 : 2e-5),
      epochs: numberFlag(s("epochs"), "--epochs", { int: true, min: 1 }) ?? 3,
      maxSteps: numberFlag(s("max-steps"), "--max-steps", { int: true, min: 1 }),
      batchSize: numberFlag(s("batch-size"), "--batch-size", { int: true, min: 1 }) ?? 4,
      gradAccum: numberFlag(s("grad-accum"), "--grad-accum", { int: true, min: 1 }) ?? 1,
      maxGradNorm: numberFlag(s("max-grad-norm"), "--max-grad-norm", { min: 0 }) ?? 1,
      schedule: parseSchedule(s("schedule") ?? "cosine"),
      warmupSteps: numberFlag(s("warmup"), "--warmup", { int: true, min: 0 }) ?? 0,
      weightDecay: numberFlag(s("weight-decay"), "--weight-decay", { min: 0 }) ?? 0,
      seed: numberFlag(s("seed"), "--seed", { int: true, min: 0 }) ?? 42,
      recompute: v.recompute === true,
      evalEvery: numberFlag(s("eval-every"), "--eval-every", { int: true, min: 1 }),
      saveEvery: numberFlag(s("save-every"), "--save-every", { int: true, min: 1 }) ?? 0,
      evalAtStart: true,
    };
    const maxLength = numberFlag(s("max-length"), "--max-length", { int: true, min: 2 });
    const tokenizer = loadTokenizer(modelDir);
    const cfg = loadConfig(modelDir);
    const valSize = numberFlag(s("val-size"), "--val-size", { min: 0 });
    const common = { modelDir, dataPath, evalDataPath: s("eval-data"), valSize, tokenizer, format, maxLength, packing: v.packing === true };
    const data = prepareData(common, cfg, train.seed);
    const total = totalSteps(data.train.length, train);
    const ratio = numberFlag(s("warmup-ratio"), "--warmup-ratio", { min: 0, max: 1 });
    if (ratio !== undefined) train.warmupSteps = Math.ceil(ratio * total);
    train.evalEvery ??= Math.max(1, Math.ceil(total / 10));
    const quiet = v.quiet === true;
    const say = (m: string): void => { if (!quiet) process.stderr.write(m + "\n"); };

    if (exportDir) {
      const files = exportDeepspeed({
        outDir: exportDir, modelDir, trainOutputDir: outDir ?? resolve(exportDir, "output"), format: data.format,
        conversations: data.conversations, examples: data.train, train, lora, cutoffLen: data.encode.maxLength!, packing: v.packing === true,
      });
      say(`wrote the LLaMA-Factory + DeepSpeed ZeRO-2 job (${data.train.length} examples) to ${exportDir}: ${files.length} files; run ${resolve(exportDir, "launch.sh")}`);
      return 0;
    }

    const nTok = data.train.reduce((a, e) => a + e.ids.length, 0);
    say(`${lora?.from ? `LoRA (continuing ${lora.from})` : lora ? `LoRA r=${lora.r} α=${lora.alpha} on ${lora.targets.join(",")}` : "full fine-tuning"} of ${modelDir}: ` +
      `${data.train.length} examples (${nTok} tokens, format ${data.format}${data.dropped ? `, ${data.dropped} dropped with nothing to learn` : ""}), ${total} steps`);
    const tty = process.stderr.isTTY === true;
    const every = Math.max(1, Math.round(total / 20));
    const onLog = (e: LogEntry, n: number): void => {
      if (quiet) return;
      const line = formatProgress(e, n);
      if (tty) process.stderr.write(`\r\x1b[K${line}${e.evalLoss !== undefined || e.step === n ? "\n" : ""}`);
      else if (e.evalLoss !== undefined || e.step % every === 0 || e.step === n || e.step === 1) process.stderr.write(line + "\n");
    };
    // First Ctrl-C: finish the step, save a checkpoint, exit; a second one kills at once (Node's default).
    const stop = new AbortController();
    process.once("SIGINT", () => {
      process.stderr.write("\nstopping after this step (Ctrl-C again to kill)…\n");
      stop.abort();
    });
    const r = await finetune({ ...common, outDir: outDir!, train, lora, resume: v.resume === true, saveDtype: saveDtype as "auto", hooks: { onLog }, prepared: data, signal: stop.signal });
    if (r.state.stopped) {
      say(`stopped at step ${r.state.step}; checkpoint saved in ${resolve(outDir!, "checkpoint")}: rerun the same command with --resume to continue`);
      return 130;
    }
    const evals = r.state.history.filter((e) => e.evalLoss !== undefined);
    if (evals.length) say(`eval loss ${evals[0].evalLoss!.toFixed(4)} → ${evals.at(-1)!.evalLoss!.toFixed(4)}`);
    say(`wrote ${lora?.adapterOnly ? "the PEFT adapter" : "the model"} to ${r.outDir}${r.adapterDir && !lora?.adapterOnly ? ` (adapter in ${r.adapterDir})` : ""}; loss plot ${resolve(r.outDir, "training_loss.svg")}`);
    return 0;
  },
};
