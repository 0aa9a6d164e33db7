/**
 * The seed README's example conversations (xverse-ai/XVERSE-13B README.md, "Transformers 加载方式" and the
 * "角色扮演" / "工具调用" examples), copied as data: the strings are the spec the prompt tests check against.
 */
import type { ChatMessage } from "../../src/chat/types.js";

/** The two-turn 1955-president dialogue from the Transformers usage example. */
export const PRESIDENT: ChatMessage[] = [
  { role: "user", content: "1955年谁是美国总统？他是什么党派？" },
  { role: "assistant", content: "1955年,美国总统是德怀特·D·艾森豪威尔。他所属的党派是共和党。" },
  { role: "user", content: "他任职了多少年" },
];

/** The role-play example (扮演杨过), up to the last user turn. */
export const ROLE_PLAY: ChatMessage[] = [
  { role: "user", content: "扮演杨过" },
  { role: "assistant", content: "好的,我现在要扮演的是杨过这个角色。他是金庸先生的武侠小说《神雕侠侣》中的主人公之一。现在你可以开始和我对话了。" },
  { role: "user", content: "你是谁" },
  { role: "assistant", content: "我叫杨过,是个孤儿,被郭靖夫妇收养。" },
  { role: "user", content: "你的妻子是谁" },
  { role: "assistant", content: "我的妻子是小龙女。" },
  { role: "user", content: "退出角色扮演" },
  { role: "assistant", content: "好的,下次再见!" },
  { role: "user", content: "你是谁" },
];

/** The README's three plugins, in XVERSE's plugin form, exactly as listed (note the string "True"). */
export const README_PLUGINS = [
  { name: "recommendation", description: "根据用户历史行为，推荐商品", parameters: [{ name: "user_id", description: "用户ID" }, { name: "limit", description: "返回结果数量" }] },
  {
    name: "touristAttraction",
    description: "旅游景点查询API，根据用户指令查询旅游景点相关信息",
    parameters: [
      { name: "city", description: "指定查询的城市，例如北京、上海、广州", required: "True" },
      { name: "price", description: "指定查询的门票价格，例如100元以下、100-200元、200元以上" },
    ],
  },
  {
    name: "hotel_search",
    description: "可以查询多个酒店的信息",
    parameters: [
      { name: "city", description: "城市名称，比如上海", required: true },
      { name: "check_in", description: "入住日期，格式为YYYY-MM-DD，默认为今天", required: true },
      { name: "check_out", description: "离店日期，格式为YYYY-MM-DD，默认为明天", required: true },
      { name: "guests", description: "旅客人数，包括成人和儿童，默认为1", required: true },
      { name: "rooms", description: "预订房间数，默认为1", required: true },
      { name: "price_min", description: "最低价格，单位为人民币，可选", required: false },
      { name: "price_max", description: "最高价格，单位为人民币，可选", required: false },
      { name: "rating_min", description: "最低评分，范围为0到10，可选", required: false },
      { name: "amenities", description: "设施和服务，如wifi、停车场、健身房等，可选", required: false },
      { name: "keywords", description: "搜索关键字，可选", required: false },
    ],
  },
];

/** The README's instruction paragraph as it appears there. */
export const README_INTRO =
  "你是个大语言模型，有多种能力，可以通过插件集成api来回复用户的问题，还能解答用户使用模型遇到的问题和模型知识相关问答。目前支持的插件信息如下，请自行判断是否需要调用插件来解决当前用户问题。若需要调用插件，则需要将插件调用请求按照json格式给出，必须包含api_name、url、parameters字段，并在其前后使用<|startofthink|>和<|endofthink|>作为标志。然后你需要根据插件API调用结果生成合理的答复；若无需调用插件，则直接给出对应回复即可：";

export const README_TIME_LINE = "当前时间：2007-03-09 07:02:15";
export const README_NOW = new Date(2007, 2, 9, 7, 2, 15); // local time, as the line is rendered

export const HOTEL_QUESTION = "请帮我找一下上海的酒店，入住日期是今天，离店日期是明天，一共两个人，需要一间房间。";

/** The model's final reply in the README's hotel dialogue, byte for byte (note "{ \n" and no space after ","). */
export const HOTEL_REPLY =
  "好的，我会为您查询符合条件的酒店。请稍等片刻\n<|startofthink|>```JSON\n{ \n   \"api_name\": \"hotel_search\",\"parameters\": {\n      \"city\": \"上海\",\n      \"check_in\": \"2007-03-09\",\n      \"check_out\": \"2007-03-10\",\n      \"guests\": 2,\n      \"rooms\": 1,\n      \"price_min\": 300,\n      \"price_max\": 500,\n      \"rating_min\": 8,\n      \"amenities\": \"停车场\"\n   }\n}```<|endofthink|>";

export const HOTEL_ARGS = {
  city: "上海",
  check_in: "2007-03-09",
  check_out: "2007-03-10",
  guests: 2,
  rooms: 1,
  price_min: 300,
  price_max: 500,
  rating_min: 8,
  amenities: "停车场",
};

/** The hotel dialogue's turns after the plugin block (the first user content gets the block prepended). */
export const HOTEL_DIALOGUE = [
  { role: "user", content: HOTEL_QUESTION },
  { role: "assistant", content: "好的，请问您需要查询哪个价格区间和评分区间的酒店呢？" },
  { role: "user", content: "价格在300-500之间，评分不低于8分" },
  { role: "assistant", content: "好的，还有其他特殊需求吗？比如设施和服务方面的要求？" },
  { role: "user", content: "有免费停车场就更好了。" },
] satisfies ChatMessage[];

/** The README's numbered plugin lines, verbatim (hand-written JSON: no space before "parameters"). */
export const README_PLUGIN_LINES = [
  '1. {"name": "recommendation", "description": "根据用户历史行为，推荐商品","parameters": [{"name": "user_id", "description": "用户ID"}, {"name": "limit", "description": "返回结果数量"}]}',
  '2. {"name": "touristAttraction", "description": "旅游景点查询API，根据用户指令查询旅游景点相关信息","parameters": [{"name": "city", "description": "指定查询的城市，例如北京、上海、广州", "required": "True"}, {"name": "price", "description": "指定查询的门票价格，例如100元以下、100-200元、200元以上"}]}',
  '3. {"name": "hotel_search", "description": "可以查询多个酒店的信息","parameters": [{"name": "city", "description": "城市名称，比如上海", "required": true}, {"name": "check_in", "description": "入住日期，格式为YYYY-MM-DD，默认为今天", "required": true}, {"name": "check_out", "description": "离店日期，格式为YYYY-MM-DD，默认为明天", "required": true}, {"name": "guests", "description": "旅客人数，包括成人和儿童，默认为1", "required": true}, {"name": "rooms", "description": "预订房间数，默认为1", "required": true}, {"name": "price_min", "description": "最低价格，单位为人民币，可选", "required": false}, {"name": "price_max", "description": "最高价格，单位为人民币，可选", "required": false}, {"name": "rating_min", "description": "最低评分，范围为0到10，可选", "required": false}, {"name": "amenities", "description": "设施和服务，如wifi、停车场、健身房等，可选", "required": false}, {"name": "keywords", "description": "搜索关键字，可选", "required": false}]}',
];
