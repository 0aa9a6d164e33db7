/**
 * Prompt builders against the spec (xverse-facts §4a/§4b): ids must equal the concatenation of the pieces each
 * builder specifies, each piece encoded on its own by an independent oracle — the Rust `tokenizers` library
 * (peers/) on the tiny-xverse tokenizer.json — and the text must have the documented shape.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildPrompt, inputBudget, loadChatSettings, resolveChatFormat } from "../../src/chat/prompt.js";
import { normalizeTools, toolPrompt, withTools } from "../../src/chat/tools.js";
import type { ChatMessage } from "../../src/chat/types.js";
import { loadConfig } from "../../src/config.js";
import { XverseError } from "../../src/errors.js";
import { loadTokenizer } from "../../src/tokenizer/load.js";
import { fixture, repoRoot, requirePeer } from "../helpers/peers.js";
import {
  HOTEL_DIALOGUE, HOTEL_QUESTION, HOTEL_REPLY, PRESIDENT, README_INTRO, README_NOW, README_PLUGIN_LINES, README_PLUGINS,
  README_TIME_LINE, ROLE_PLAY,
} from "./readme-fixtures.js";

const TINY = fixture("golden", "tiny-xverse");
const tok = loadTokenizer(TINY);
const tinyConfig = loadConfig(TINY);
/** XVERSE-13B-2-Chat's numbers (8K positions, truncation 6144, eos 3), so that the README dialogues fit whole. */
const xverseConfig = { maxPositionEmbeddings: 8192, maxTokenizerTruncation: 6144, chatFormat: null, eosTokenIds: [3] };
const EOS = "<|endoftext|>";

let oracle: (text: string) => Promise<number[]>;
before(() => {
  const { Tokenizer } = requirePeer("tokenizers");
  const rust = Tokenizer.fromFile(join(TINY, "tokenizer.json"));
  oracle = async (text) => (await rust.encode(text, null, { addSpecialTokens: false })).getIds();
});

/** Concatenation of separately encoded pieces; a number is an id used as is (the eos that closes a turn). */
async function pieces(...ps: (string | number)[]): Promise<number[]> {
  const out: number[] = [];
  for (const p of ps) out.push(...(typeof p === "number" ? [p] : await oracle(p)));
  return out;
}

test("v2: the 1955-president dialogue — prefixes and contents encoded separately, eos id 3 after the reply", async () => {
  const [u1, a1, u2] = PRESIDENT.map((m) => m.content);
  const p = buildPrompt(tok, PRESIDENT, { config: xverseConfig, format: "v2" });
  assert.deepEqual(p.ids, await pieces("Human: ", u1 + "\n\n", "Assistant: ", a1, 3, "Human: ", u2 + "\n\n", "Assistant: "));
  assert.equal(p.text, `Human: ${u1}\n\nAssistant: ${a1}${EOS}Human: ${u2}\n\nAssistant: `);
  assert.equal(p.format, "v2");
  assert.equal(p.truncated, false);
  assert.equal(p.budget, 6144);
  // v2 is the default when nothing else is chosen
  assert.deepEqual(buildPrompt(tok, PRESIDENT, { config: xverseConfig }).ids, p.ids);
});

test("v1: the 1955-president dialogue — one string per user turn, 'Assistant: ' + reply then eos id 3", async () => {
  const [u1, a1, u2] = PRESIDENT.map((m) => m.content);
  const p = buildPrompt(tok, PRESIDENT, { config: xverseConfig, format: "v1" });
  assert.deepEqual(p.ids, await pieces(`Human: ${u1}\n\n`, `Assistant: ${a1}`, 3, `Human: ${u2}\n\nAssistant: `));
  assert.equal(p.text, `Human: ${u1}\n\nAssistant: ${a1}${EOS}Human: ${u2}\n\nAssistant: `);
  assert.equal(p.budget, 6144);
  // the two formats really differ in ids (separate encoding adds a ▁ at each piece start)
  assert.notDeepEqual(p.ids, buildPrompt(tok, PRESIDENT, { config: xverseConfig, format: "v2" }).ids);
});

test("v2 and v1: the role-play dialogue (five user turns)", async () => {
  const v2: (string | number)[] = [];
  const v1: (string | number)[] = [];
  ROLE_PLAY.forEach((m, i) => {
    const last = i === ROLE_PLAY.length - 1;
    if (m.role === "user") {
      v2.push("Human: ", m.content + "\n\n", ...(last ? ["Assistant: "] : []));
      v1.push(`Human: ${m.content}\n\n${last ? "Assistant: " : ""}`);
    } else {
      v2.push("Assistant: ", m.content, 3);
      v1.push(`Assistant: ${m.content}`, 3);
    }
  });
  assert.deepEqual(buildPrompt(tok, ROLE_PLAY, { config: xverseConfig, format: "v2" }).ids, await pieces(...v2));
  assert.deepEqual(buildPrompt(tok, ROLE_PLAY, { config: xverseConfig, format: "v1" }).ids, await pieces(...v1));
  const text = buildPrompt(tok, ROLE_PLAY, { config: xverseConfig }).text;
  assert.ok(text.startsWith("Human: 扮演杨过\n\nAssistant: 好的,我现在要扮演的是杨过这个角色。"));
  assert.ok(text.endsWith(`Assistant: 好的,下次再见!${EOS}Human: 你是谁\n\nAssistant: `));
});

test("the plugin block reproduces the README's wording, numbered list and time line", () => {
  const block = toolPrompt(normalizeTools(README_PLUGINS), README_NOW);
  const lines = block.split("\n");
  assert.equal(lines[0], README_INTRO);
  // the README's JSON is hand-written with no space before "parameters"; ours is json.dumps style throughout
  assert.deepEqual(lines.slice(1, 4), README_PLUGIN_LINES.map((l) => l.replace('","parameters"', '", "parameters"')));
  assert.equal(lines[4], README_TIME_LINE);
  assert.equal(lines.length, 5);
  // OpenAI-form tools become the same plugin objects
  const openai = normalizeTools([{ type: "function", function: { name: "hotel_search", description: "可以查询多个酒店的信息", parameters: {
    type: "object", properties: { city: { type: "string", description: "城市名称，比如上海" }, rooms: { type: "integer", description: "预订房间数，默认为1" } }, required: ["city"] } } }]);
  assert.equal(toolPrompt(openai, README_NOW).split("\n")[1],
    '1. {"name": "hotel_search", "description": "可以查询多个酒店的信息", "parameters": [{"name": "city", "description": "城市名称，比如上海", "required": true}, {"name": "rooms", "description": "预订房间数，默认为1", "required": false}]}');
});

test("v2: the hotel-search function-call dialogue, then the call and its exec result", async () => {
  const block = `${README_INTRO}\n${README_PLUGIN_LINES.map((l) => l.replace('","parameters"', '", "parameters"')).join("\n")}\n${README_TIME_LINE}`;
  const [u1, a1, u2, a2, u3] = HOTEL_DIALOGUE.map((m) => m.content);
  const p = buildPrompt(tok, HOTEL_DIALOGUE, { config: xverseConfig, tools: README_PLUGINS, now: README_NOW });
  assert.deepEqual(p.ids, await pieces(
    "Human: ", `${block}\n${HOTEL_QUESTION}\n\n`, "Assistant: ", a1, 3, "Human: ", u2 + "\n\n", "Assistant: ", a2, 3, "Human: ", u3 + "\n\n", "Assistant: ",
  ));
  assert.equal(u1, HOTEL_QUESTION);
  assert.ok(p.text.startsWith(`Human: ${README_INTRO}\n1. {"name": "recommendation"`));
  // the caller's history is not touched
  assert.equal(HOTEL_DIALOGUE[0].content, HOTEL_QUESTION);

  const result = '{"hotels": [{"name": "上海大酒店", "price": 450, "rating": 8.6, "parking": true}]}';
  const next: ChatMessage[] = [...HOTEL_DIALOGUE, { role: "assistant", content: HOTEL_REPLY }, { role: "exec", content: result }];
  const q = buildPrompt(tok, next, { config: xverseConfig, tools: README_PLUGINS, now: README_NOW });
  assert.deepEqual(q.ids.slice(p.ids.length), await pieces(HOTEL_REPLY, 3, "Exec: ", result + "\n\n", "Assistant: "));
  assert.ok(q.text.endsWith(`${HOTEL_REPLY}${EOS}Exec: ${result}\n\nAssistant: `));
  // OpenAI's "tool" role is the same turn
  const viaTool = next.map((m) => (m.role === "exec" ? { ...m, role: "tool" as const } : m));
  assert.deepEqual(buildPrompt(tok, viaTool, { config: xverseConfig, tools: README_PLUGINS, now: README_NOW }).ids, q.ids);
});

test("v2 system: 'Human: ' + system + one newline, first only; v1 rejects it", async () => {
  const msgs: ChatMessage[] = [{ role: "system", content: "你是元象开发的XChat。" }, ...PRESIDENT.slice(0, 1)];
  const p = buildPrompt(tok, msgs, { config: xverseConfig });
  assert.deepEqual(p.ids, await pieces("Human: ", "你是元象开发的XChat。\n", "Human: ", PRESIDENT[0].content + "\n\n", "Assistant: "));
  assert.equal(p.text, `Human: 你是元象开发的XChat。\nHuman: ${PRESIDENT[0].content}\n\nAssistant: `);
  assert.throws(() => buildPrompt(tok, msgs, { config: xverseConfig, format: "v1" }), (e: unknown) => e instanceof XverseError && e.code === "unsupported" && /v1/.test(e.message));
  assert.throws(() => buildPrompt(tok, [PRESIDENT[0], msgs[0]], { config: xverseConfig }), /system message must be the first/);
  assert.throws(() => buildPrompt(tok, [{ role: "exec", content: "x" }], { config: xverseConfig, format: "v1" }), XverseError);
});

/** Suffix rule: the most recent whole rounds whose total fits the budget (an independent statement of the walk). */
function newestFitting(rounds: number[][], budget: number): number[] {
  let kept: number[] = [];
  for (let k = rounds.length - 1; k >= 0; k--) {
    const next = [...rounds[k], ...kept];
    if (next.length > budget) break;
    kept = next;
  }
  return kept;
}

test("over budget (tiny-xverse: 256 positions, max_new 2048 → 128 tokens): v2 and v1 keep the newest rounds", async () => {
  assert.equal(inputBudget("v2", 256, 2048, 192), 128);
  assert.equal(inputBudget("v1", 256, 2048), 128);
  assert.equal(inputBudget("v2", 8192, 2048, 6144), 6144);
  assert.equal(inputBudget("v1", 8192, 512), 7680);
  // a round = a user turn and the reply after it; the newest round ends with "Assistant: "
  const v2Rounds: number[][] = [];
  const v1Rounds: number[][] = [];
  for (let i = 0; i < ROLE_PLAY.length; i += 2) {
    const u = ROLE_PLAY[i].content;
    const a = ROLE_PLAY[i + 1]?.content;
    v2Rounds.push(await (a !== undefined ? pieces("Human: ", u + "\n\n", "Assistant: ", a, 3) : pieces("Human: ", u + "\n\n", "Assistant: ")));
    v1Rounds.push(await (a !== undefined ? pieces(`Human: ${u}\n\n`, `Assistant: ${a}`, 3) : pieces(`Human: ${u}\n\nAssistant: `)));
  }
  for (const [format, rounds] of [["v2", v2Rounds], ["v1", v1Rounds]] as const) {
    assert.ok(rounds.flat().length > 128, "the fixture must overflow the budget");
    const p = buildPrompt(tok, ROLE_PLAY, { config: tinyConfig, format });
    assert.equal(p.budget, 128);
    assert.deepEqual(p.ids, newestFitting(rounds, 128), format);
    assert.ok(p.ids.length > 0 && p.ids.length <= 128);
    assert.equal(p.truncated, true);
    assert.ok(p.text.endsWith("Human: 你是谁\n\nAssistant: "));
  }
});

test("over budget, newest message alone too long: v2 cuts it from its end, v1 keeps the last ids", async () => {
  const long = "上海的酒店".repeat(60);
  const msgs: ChatMessage[] = [...PRESIDENT.slice(0, 2), { role: "user", content: long }];
  const A = await oracle("Assistant: ");
  const v2 = buildPrompt(tok, msgs, { config: tinyConfig, format: "v2" });
  assert.deepEqual(v2.ids, [...(await pieces("Human: ", long + "\n\n")).slice(0, 128 - A.length), ...A]);
  assert.equal(v2.ids.length, 128);
  assert.ok(v2.text.startsWith("Human: 上海的酒店上海") && v2.text.endsWith("Assistant: "));
  const v1 = buildPrompt(tok, msgs, { config: tinyConfig, format: "v1" });
  assert.deepEqual(v1.ids, (await pieces(`Human: ${long}\n\nAssistant: `)).slice(-128));
  assert.ok(v1.truncated && v2.truncated);
});

test("v2: a system prompt that does not fit is dropped, the newest turns stay", async () => {
  const msgs: ChatMessage[] = [{ role: "system", content: "规则".repeat(80) }, { role: "user", content: "你好" }];
  const p = buildPrompt(tok, msgs, { config: tinyConfig });
  assert.deepEqual(p.ids, await pieces("Human: ", "你好\n\n", "Assistant: "));
  assert.equal(p.truncated, true);
});

test("the embedded stories260K (not a chat model): v2 closes turns with its eos 2 and adds BOS as its tokenizer_config asks", () => {
  const dir = join(repoRoot, "models", "stories260K");
  const stok = loadTokenizer(dir);
  const settings = loadChatSettings(dir);
  assert.equal(settings.addBosToken, true);
  const msgs: ChatMessage[] = [{ role: "user", content: "Hi" }, { role: "assistant", content: "Once" }, { role: "user", content: "Go on" }];
  const p = buildPrompt(stok, msgs, { config: loadConfig(dir), settings });
  const enc = (s: string) => stok.encode(s, { addSpecialTokens: false }).ids;
  assert.deepEqual(p.ids, [1, ...enc("Human: "), ...enc("Hi\n\n"), ...enc("Assistant: "), ...enc("Once"), 2, ...enc("Human: "), ...enc("Go on\n\n"), ...enc("Assistant: ")]);
  assert.equal(p.text, "Human: Hi\n\nAssistant: Once</s>Human: Go on\n\nAssistant: ");
});

test("format choice: explicit → config chat_format → chat_template → v2; jinja templates render and encode", async () => {
  const tpl = "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
  assert.equal(resolveChatFormat(undefined, null, null), "v2");
  assert.equal(resolveChatFormat("v1", "v2", tpl), "v1");
  assert.equal(resolveChatFormat(undefined, "v1", tpl), "v1");
  assert.equal(resolveChatFormat(undefined, null, tpl), "template");
  assert.throws(() => resolveChatFormat("template", null, null), /chat_template/);
  assert.throws(() => resolveChatFormat("v3", null, null), /v1, v2 or template/);
  const settings = { chatTemplate: tpl, addBosToken: false, bosToken: "<|startoftext|>", eosToken: EOS };
  const msgs: ChatMessage[] = [{ role: "user", content: "hi" }, { role: "assistant", content: "yo" }, { role: "exec", content: "42" }];
  const p = buildPrompt(tok, msgs, { config: xverseConfig, settings });
  const text = `<|startoftext|><|user|>hi${EOS}<|assistant|>yo${EOS}<|tool|>42${EOS}<|assistant|>`;
  assert.equal(p.format, "template");
  assert.equal(p.text, text);
  assert.deepEqual(p.ids, await oracle(text));
  // over budget: the oldest turns go first
  const many: ChatMessage[] = Array.from({ length: 40 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `turn ${i} 上海` }));
  const t = buildPrompt(tok, many, { config: tinyConfig, settings });
  assert.ok(t.truncated && t.ids.length <= 128 && t.text.endsWith(`<|user|>turn 38 上海${EOS}<|assistant|>turn 39 上海${EOS}`));
});

test("withTools copies the history and puts the block before the first user message", () => {
  const tools = normalizeTools(README_PLUGINS);
  const hist: ChatMessage[] = [{ role: "system", content: "s" }, { role: "user", content: "q" }];
  const out = withTools(hist, tools, README_NOW);
  assert.equal(hist[1].content, "q");
  assert.equal(out[1].content, `${toolPrompt(tools, README_NOW)}\nq`);
  assert.equal(out[0].content, "s");
});
