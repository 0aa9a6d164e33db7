// The exact prompts, as literal strings, for items of the real samples: MMLU (hendrycks/lm-eval format),
// C-Eval (ceval's evaluators/llama.py), CMMLU (CMMLU's src/mp_utils.py), GSM8K (Wei et al. 2022 CoT exemplars,
// lm-eval gsm8k-cot layout); and the GSM8K answer extractor on the 300 reference solutions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readGsm8k, readMcTask, type McTask } from "../../src/eval/data.js";
import { extractGsm8kAnswer, gsm8kCorrect, gsm8kPrompt, HUMANEVAL_STOP, mcFewShotPrefix, mcPrompt, truncateAtStop } from "../../src/eval/prompts.js";
import { fixture } from "../helpers/peers.js";

const data = fixture("eval");
const subject = (task: McTask, name: string) => readMcTask(data, task).find((s) => s.subject === name)!;

const MMLU_ABSTRACT_ALGEBRA_0 =
  "The following are multiple choice questions (with answers) about abstract algebra.\n\n" +
  "Find all c in Z_3 such that Z_3[x]/(x^2 + c) is a field.\nA. 0\nB. 1\nC. 2\nD. 3\nAnswer: B\n\n" +
  "Statement 1 | If aH is an element of a factor group, then |aH| divides |a|. Statement 2 | If H and K are subgroups of G then HK is a subgroup of G.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: B\n\n" +
  "Statement 1 | Every element of a group generates a cyclic subgroup of the group. Statement 2 | The symmetric group S_10 has 10 elements.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: C\n\n" +
  "Statement 1| Every function from a finite set onto itself must be one to one. Statement 2 | Every subgroup of an abelian group is abelian.\nA. True, True\nB. False, False\nC. True, False\nD. False, True\nAnswer: A\n\n" +
  "Find the characteristic of the ring 2Z.\nA. 0\nB. 3\nC. 12\nD. 30\nAnswer: A\n\n" +
  "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\nA. 0\nB. 4\nC. 2\nD. 6\nAnswer:";

const CEVAL_COMPUTER_NETWORK_0 =
  "以下是中国关于计算机网络考试的单项选择题，请选出其中的正确答案。\n\n" +
  "下列设备属于资源子网的是____。\nA. 计算机软件\nB. 网桥\nC. 交换机\nD. 路由器\n答案：A\n\n" +
  "滑动窗口的作用是____。\nA. 流量控制\nB. 拥塞控制\nC. 路由控制\nD. 差错控制\n答案：A\n\n" +
  "在OSI参考模型中，直接为会话层提供服务的是____。\nA. 应用层\nB. 表示层\nC. 传输层\nD. 网络层\n答案：C\n\n" +
  "协议是指在____之间进行通信的规则或约定。\nA. 同一结点的上下层\nB. 不同结点\nC. 相邻实体\nD. 不同结点对等实体\n答案：D\n\n" +
  "主机甲与主机乙之间使用后退N帧协议(GBN)传输数据，甲的发送窗口尺寸为1000，数据帧长为1000字节，信道带宽为100Mbps，乙每收到一个数据帧立即利用一个短帧(忽略其传输延迟)进行确认，若甲、乙之间的单向传播延迟是50ms，则甲可以达到的最大平均数据传输速率约为____。\nA. 10Mbps\nB. 20Mbps\nC. 80Mbps\nD. 100Mbps\n答案：C\n\n" +
  "使用位填充方法，以01111110为位首flag，数据为011011111111111111110010，求问传送时要添加几个0____\nA. 1\nB. 2\nC. 3\nD. 4\n答案：";

const CMMLU_COMPUTER_SCIENCE_0 =
  "以下是关于计算机科学的单项选择题，请直接给出正确答案的选项。\n\n" +
  "题目：关系数据库中的数据逻辑结构是\nA. 树形结构\nB. ⼆维表格\nC. 层次结构\nD. ⽹状结构\n答案是：B\n\n" +
  "题目：下⾯属于端系统之间的协议是\nA. ARP \nB. IP\nC. TCP\nD. PPP\n答案是：C\n\n" +
  "题目：下列选项中，不属于线性结构的是\nA. 线性表 \nB. 栈\nC. 队列\nD. ⽹\n答案是：D\n\n" +
  "题目：RAM代表的是\nA. 随机存储器 \nB. 软盘存储器 \nC. 只读存储器 \nD. ⾼速缓存器 \n答案是：A\n\n" +
  "题目：算法的基本结构中不包括\nA. 选择结构 \nB. 循环结构 \nC. 顺序结构 \nD. 逻辑结构\n答案是：D\n\n" +
  "题目：⽤⼀个字节最多能编出（ ）不同的码\nA. 128个\nB. 256个\nC. 16个\nD. 8个\n答案是：";

const GSM8K_0 =
  "Q: There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?\nA: There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.\n\n" +
  "Q: If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?\nA: There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.\n\n" +
  "Q: Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?\nA: Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39.\n\n" +
  "Q: Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?\nA: Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8.\n\n" +
  "Q: Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?\nA:";

test("MMLU 5-shot prompt (abstract_algebra test item 0); choices scored as \" A\"…\" D\"", () => {
  const s = subject("mmlu", "abstract_algebra");
  const p = mcPrompt(s, s.eval[0]!, 5);
  assert.equal(p.context, MMLU_ABSTRACT_ALGEBRA_0);
  assert.deepEqual(p.continuations, [" A", " B", " C", " D"]);
  assert.equal(s.eval[0]!.answer, 1); // B: [Q(√2, √3, √18) : Q] = 4
});

test("C-Eval 5-shot prompt (computer_network val item 0); choices scored as \"A\"…\"D\" after 答案：", () => {
  const s = subject("ceval", "computer_network");
  const p = mcPrompt(s, s.eval[0]!, 5);
  assert.equal(p.context, CEVAL_COMPUTER_NETWORK_0);
  assert.deepEqual(p.continuations, ["A", "B", "C", "D"]);
});

test("CMMLU 5-shot prompt (computer_science test item 0): 题目：/答案是： as the official code", () => {
  const s = subject("cmmlu", "computer_science");
  const p = mcPrompt(s, s.eval[0]!, 5);
  assert.equal(p.context, CMMLU_COMPUTER_SCIENCE_0);
  assert.deepEqual(p.continuations, ["A", "B", "C", "D"]);
  assert.equal(s.eval[0]!.answer, 1); // B: 256
});

test("--shots changes only how many dev examples precede the item; 0-shot is header + question", () => {
  const s = subject("mmlu", "global_facts");
  assert.equal(mcPrompt(s, s.eval[0]!, 0).context, "The following are multiple choice questions (with answers) about global facts.\n\n" +
    "As of 2016, about what percentage of adults aged 18 years or older were overweight?\nA. 10%\nB. 20%\nC. 40%\nD. 80%\nAnswer:");
  assert.ok(mcPrompt(s, s.eval[3]!, 2).context.startsWith(mcFewShotPrefix(s, 2)));
  assert.equal(mcFewShotPrefix(s, 2).split("\nAnswer: ").length, 3);
});

test("GSM8K 4-shot chain-of-thought prompt (test item 0)", () => {
  assert.equal(gsm8kPrompt(readGsm8k(data)[0]!), GSM8K_0);
});

test("GSM8K extractor returns each of the 300 reference solutions' own #### answer", () => {
  const lines = readFileSync(join(data, "gsm8k", "gsm8k_test_first300.jsonl"), "utf8").trim().split("\n");
  assert.equal(lines.length, 300);
  let ok = 0;
  for (const line of lines) {
    const { answer } = JSON.parse(line) as { answer: string };
    const own = answer.slice(answer.lastIndexOf("####") + 4).trim().replace(/,/g, "");
    if (extractGsm8kAnswer(answer) === own && gsm8kCorrect(answer, own)) ok++;
  }
  assert.equal(ok, 300);
});

test("GSM8K extractor: 'The answer is N' first, else the last number; $ , and trailing . stripped", () => {
  assert.equal(extractGsm8kAnswer("She pays 3 * $4 = $12. The answer is $1,012.50."), "1012.5");
  assert.equal(extractGsm8kAnswer("The answer is 18. Then 7 more questions follow: 99"), "18");
  assert.equal(extractGsm8kAnswer("So he has 5 + 4 = 9 toys."), "9");
  assert.equal(extractGsm8kAnswer("It fell by 3 degrees to -7."), "-7");
  assert.equal(extractGsm8kAnswer("no digits here"), null);
  assert.ok(gsm8kCorrect("... The answer is 18.00.", "18"));
  assert.ok(!gsm8kCorrect("... The answer is 17.", "18"));
});

test("HumanEval completions stop at a new top-level statement", () => {
  const completion = "    return sorted(x)\n\n\ndef helper():\n    pass\n";
  assert.equal(truncateAtStop(completion, HUMANEVAL_STOP), "    return sorted(x)\n\n");
  assert.equal(truncateAtStop("    return 1\nif __name__ == '__main__':\n    main()", HUMANEVAL_STOP), "    return 1");
  assert.equal(truncateAtStop("    return 1\n# test\nprint(f(2))", HUMANEVAL_STOP), "    return 1");
});
