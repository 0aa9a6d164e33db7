/**
 * Supervised fine-tuning data: conversation files → token ids with labels → right-padded batches.
 *
 * Accepted records (a .jsonl file, one per line, or a .json array):
 *   XVERSE seed / ShareGPT  {"conversations": [{"from": "human"|"user"|"system"|"bot"|"gpt"|"assistant", "value"}]}
 *   OpenAI style            {"messages": [{"role": "system"|"user"|"assistant", "content"}]}
 *   Alpaca                  {"instruction", "input"?, "output", "system"?, "history"?: [[q, a], …]}
 * Each turn is tokenized as LLaMA-Factory's xverse template does it (and as golden_train was built): the prompt
 * ("Human: {q}\n\nAssistant: ") is masked with −100, the reply is trained on and closed by the eos id.
 */
import { readFileSync } from "node:fs";
import { XverseError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { Rng } from "./rng.js";
import type { TrainBatch } from "./xverse-train-model.js";
import { maxOf, pushAll } from "../arrays.js";

export const IGNORE = -100;

export interface Turn { user: string; assistant: string }
export interface Conversation { system?: string; turns: Turn[] }

export interface Example {
  ids: number[];
  /** Same length as ids; −100 where the model is not trained (prompt, padding). */
  labels: number[];
}

type Rec = Record<string, unknown>;

function str(v: unknown, where: string): string {
  if (typeof v !== "string") throw new XverseError("bad_data", `${where}: expected a string, got ${JSON.stringify(v)?.slice(0, 60)}`);
  return v;
}

/** Pairs up alternating user/assistant messages; a trailing user message without a reply is dropped. */
function fromMessages(msgs: { role: string; content: string }[], where: string): Conversation {
  const conv: Conversation = { turns: [] };
  let pending: string | null = null;
  msgs.forEach((m, i) => {
    if (m.role === "system") {
      if (i !== 0) throw new XverseError("bad_data", `${where}: a system message must come first`);
      conv.system = m.content;
    } else if (m.role === "user") {
      if (pending !== null) throw new XverseError("bad_data", `${where}: two user messages in a row (message ${i})`);
      pending = m.content;
    } else if (m.role === "assistant") {
      if (pending === null) throw new XverseError("bad_data", `${where}: an assistant message without a user message before it (message ${i})`);
      conv.turns.push({ user: pending, assistant: m.content });
      pending = null;
    } else {
      throw new XverseError("bad_data", `${where}: unknown role "${m.role}" (use human/user, bot/gpt/assistant or system)`);
    }
  });
  return conv;
}

const ROLE: Record<string, string> = { human: "user", user: "user", bot: "assistant", gpt: "assistant", assistant: "assistant", system: "system" };

/** One record in any accepted layout → a conversation. */
export function parseRecord(r: unknown, where: string): Conversation {
  if (typeof r !== "object" || r === null || Array.isArray(r)) throw new XverseError("bad_data", `${where}: expected a JSON object`);
  const o = r as Rec;
  if (Array.isArray(o.conversations)) {
    const msgs = o.conversations.map((m, i) => {
      const mm = m as Rec;
      const from = str(mm.from ?? mm.role, `${where} conversations[${i}].from`);
      const role = ROLE[from];
      if (!role) throw new XverseError("bad_data", `${where} conversations[${i}]: unknown "from": "${from}" (use human, bot, gpt or system)`);
      return { role, content: str(mm.value ?? mm.content, `${where} conversations[${i}].value`) };
    });
    const c = fromMessages(msgs, where);
    if (typeof o.system === "string" && !c.system) c.system = o.system;
    return c;
  }
  if (Array.isArray(o.messages)) {
    return fromMessages(o.messages.map((m, i) => {
      const mm = m as Rec;
      return { role: str(mm.role, `${where} messages[${i}].role`), content: str(mm.content, `${where} messages[${i}].content`) };
    }), where);
  }
  if (typeof o.instruction === "string") {
    const turns: Turn[] = [];
    if (Array.isArray(o.history)) {
      for (const [i, h] of o.history.entries()) {
        if (!Array.isArray(h) || h.length !== 2) throw new XverseError("bad_data", `${where}: history[${i}] must be [question, answer]`);
        turns.push({ user: str(h[0], `${where} history[${i}][0]`), assistant: str(h[1], `${where} history[${i}][1]`) });
      }
    }
    // LLaMA-Factory's alpaca converter: the query is instruction and input joined by a newline
    const input = typeof o.input === "string" ? o.input : "";
    turns.push({ user: input ? `${o.instruction}\n${input}` : o.instruction, assistant: str(o.output, `${where}.output`) });
    return { system: typeof o.system === "string" && o.system ? o.system : undefined, turns };
  }
  throw new XverseError("bad_data", `${where}: unknown record layout: expected "conversations", "messages" or Alpaca "instruction"/"output"`);
}

/** Reads a .jsonl / .json data file. */
export function readConversations(path: string): Conversation[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new XverseError("not_found", `cannot read data file ${path}: ${(e as Error).message}`);
  }
  const trimmed = text.trimStart();
  let records: unknown[];
  if (trimmed.startsWith("[")) {
    try { records = JSON.parse(text) as unknown[]; } catch (e) {
      throw new XverseError("bad_data", `${path} is not valid JSON: ${(e as Error).message}`);
    }
    return records.map((r, i) => parseRecord(r, `${path} record ${i}`));
  }
  const out: Conversation[] = [];
  text.split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    let r: unknown;
    try { r = JSON.parse(line); } catch (e) {
      throw new XverseError("bad_data", `${path}:${i + 1} is not valid JSON: ${(e as Error).message}`);
    }
    out.push(parseRecord(r, `${path}:${i + 1}`));
  });
  if (out.length === 0) throw new XverseError("bad_data", `${path} holds no records`);
  return out;
}

export interface EncodeOptions {
  /** "v1": one string "Human: {q}\n\nAssistant: " per prompt (LLaMA-Factory's xverse template); "v2": "Human: ",
   * "{q}\n\n" and "Assistant: " encoded separately, as XVERSE's v2 builder does. */
  format: "v1" | "v2";
  eosId: number;
  /** Prepended once per example (Llama-style tokenizers whose tokenizer_config says add_bos_token). XVERSE: null. */
  bosId?: number | null;
  /** Examples longer than this are cut at the end (LLaMA-Factory's cutoff_len). */
  maxLength?: number;
}

/** The one place a prompt turn is tokenized: swap this for the chat builders' encoders if they change. */
export function promptIds(tok: Tokenizer, format: "v1" | "v2", user: string, system?: string): number[] {
  const enc = (s: string): number[] => tok.encode(s, { addSpecialTokens: false }).ids;
  if (format === "v1") return enc(`Human: ${system ? system + "\n\n" : ""}${user}\n\nAssistant: `);
  const sys = system ? [...enc("Human: "), ...enc(system + "\n")] : [];
  return [...sys, ...enc("Human: "), ...enc(user + "\n\n"), ...enc("Assistant: ")];
}

export function encodeConversation(tok: Tokenizer, c: Conversation, o: EncodeOptions): Example {
  const ids: number[] = [], labels: number[] = [];
  if (o.bosId !== undefined && o.bosId !== null) { ids.push(o.bosId); labels.push(IGNORE); }
  c.turns.forEach((t, i) => {
    const p = promptIds(tok, o.format, t.user, i === 0 ? c.system : undefined);
    const r = [...tok.encode(t.assistant, { addSpecialTokens: false }).ids, o.eosId];
    pushAll(ids, p); pushAll(ids, r);
    for (let k = 0; k < p.length; k++) labels.push(IGNORE);
    pushAll(labels, r);
  });
  if (o.maxLength && ids.length > o.maxLength) { ids.length = o.maxLength; labels.length = o.maxLength; }
  return { ids, labels };
}

/** Tokenizes every conversation; drops (and counts) examples left with nothing to learn after the cut. */
export function encodeAll(tok: Tokenizer, convs: Conversation[], o: EncodeOptions): { examples: Example[]; dropped: number } {
  const examples: Example[] = [];
  let dropped = 0;
  for (const c of convs) {
    const e = encodeConversation(tok, c, o);
    // a label at position 0 is never used (targets are shifted by one)
    if (e.labels.slice(1).some((l) => l !== IGNORE)) examples.push(e); else dropped++;
  }
  return { examples, dropped };
}

/**
 * Packing: examples concatenated in order and cut into blocks of `blockSize` (attention crosses the joins, as in
 * LLaMA-Factory's default packing). Fewer pad tokens, more tokens per step.
 */
export function pack(examples: Example[], blockSize: number): Example[] {
  const ids = examples.flatMap((e) => e.ids), labels = examples.flatMap((e) => e.labels);
  const out: Example[] = [];
  for (let i = 0; i < ids.length; i += blockSize) {
    out.push({ ids: ids.slice(i, i + blockSize), labels: labels.slice(i, i + blockSize) });
  }
  return out;
}

/** Right-pads examples into one batch (pad id, mask 0, label −100), to the longest or at least `minLength`. */
export function collate(examples: Example[], padId: number, minLength = 0): TrainBatch {
  const B = examples.length, T = maxOf(examples.map((e) => e.ids.length), minLength);
  const inputIds = new Int32Array(B * T).fill(padId);
  const attentionMask = new Uint8Array(B * T);
  const labels = new Int32Array(B * T).fill(IGNORE);
  examples.forEach((e, b) => {
    for (let t = 0; t < e.ids.length; t++) {
      inputIds[b * T + t] = e.ids[t];
      attentionMask[b * T + t] = 1;
      labels[b * T + t] = e.labels[t];
    }
  });
  return { B, T, inputIds, attentionMask, labels };
}

/** The example order of one epoch: a seeded permutation, the same for the same (seed, epoch). */
export function epochOrder(n: number, seed: number, epoch: number, shuffle = true): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  return shuffle ? new Rng((seed * 1000003 + epoch * 7919 + 1) >>> 0).shuffle(order) : order;
}

/** Micro-batches of one epoch, in order (the last may be short). */
export function epochBatches(examples: Example[], batchSize: number, seed: number, epoch: number, padId: number, shuffle = true): TrainBatch[] {
  const order = epochOrder(examples.length, seed, epoch, shuffle);
  const out: TrainBatch[] = [];
  for (let i = 0; i < order.length; i += batchSize) out.push(collate(order.slice(i, i + batchSize).map((k) => examples[k]), padId));
  return out;
}

/** Number of positions a batch trains on (labels ≠ −100 after the one-token shift). */
export function countTargets(b: TrainBatch): number {
  let n = 0;
  for (let r = 0; r < b.B; r++) for (let t = 1; t < b.T; t++) if (b.labels![r * b.T + t] !== IGNORE) n++;
  return n;
}
