/**
 * GET /metrics parses as Prometheus text exposition (a strict parser written here from the format's spec: HELP /
 * TYPE comments, `name{label="v",…} value` samples, histogram _bucket/_sum/_count), and its numbers match what the
 * clients got: tokens in and out equal the usage fields, one TTFT sample per request, requests by route and status.
 * /v1/models reports the context length and the weights' format.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type OpenAI from "openai";
import type { RunningServer } from "../../src/server/http.js";
import { openai, post, raw, startTestServer } from "./helpers.js";

interface Sample { name: string; labels: Record<string, string>; value: number }

function parseProm(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (m[1] === "TYPE") {
        assert.ok(["counter", "gauge", "histogram", "summary", "untyped"].includes(m[3]), line);
        types.set(m[2], m[3]);
      }
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (m[2]) {
      for (const part of m[2].match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
        const eq = part.indexOf("=");
        labels[part.slice(0, eq)] = JSON.parse(part.slice(eq + 1));
      }
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { types, samples };
}

const get = (s: Sample[], name: string, labels: Record<string, string> = {}) =>
  s.filter((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v)).reduce((a, x) => a + x.value, 0);

describe("/metrics and /v1/models", () => {
  let srv: RunningServer;
  let client: OpenAI;
  before(async () => {
    srv = await startTestServer({ concurrency: 2 });
    client = openai(srv);
  });
  after(() => srv.close());

  it("counts what the clients saw, in valid exposition format", async () => {
    let prompt = 0, completion = 0;
    for (const stream of [false, true, false]) {
      if (!stream) {
        const r = await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Hi" }], max_tokens: 12, temperature: 0 });
        prompt += r.usage!.prompt_tokens;
        completion += r.usage!.completion_tokens;
      } else {
        for await (const c of await client.chat.completions.create({ model: "m", messages: [{ role: "user", content: "Yo" }], max_tokens: 9, temperature: 0, stream: true, stream_options: { include_usage: true } })) {
          if (c.usage) { prompt += c.usage.prompt_tokens; completion += c.usage.completion_tokens; }
        }
      }
    }
    const bad = await post(srv, "/v1/chat/completions", { messages: [] });
    assert.equal(bad.status, 400);
    const r = await raw(srv, "/metrics");
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const { types, samples } = parseProm(r.text);
    assert.equal(types.get("xverse_time_to_first_token_seconds"), "histogram");
    assert.equal(types.get("xverse_http_requests_total"), "counter");
    assert.equal(get(samples, "xverse_prompt_tokens_total"), prompt);
    assert.equal(get(samples, "xverse_generation_tokens_total"), completion);
    assert.equal(get(samples, "xverse_time_to_first_token_seconds_count"), 3);
    assert.equal(get(samples, "xverse_request_duration_seconds_count"), 3);
    assert.ok(get(samples, "xverse_inter_token_latency_seconds_count") > 0);
    assert.equal(get(samples, "xverse_http_requests_total", { route: "/v1/chat/completions", status: "200" }), 3);
    assert.equal(get(samples, "xverse_http_requests_total", { route: "/v1/chat/completions", status: "400" }), 1);
    assert.equal(get(samples, "xverse_requests_running"), 0);
    assert.equal(get(samples, "xverse_requests_waiting"), 0);
    assert.ok(samples.some((s) => s.name === "xverse_kv_cache_usage_ratio"));
    // buckets are cumulative and end at +Inf = count
    const buckets = samples.filter((s) => s.name === "xverse_time_to_first_token_seconds_bucket");
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value);
    assert.equal(buckets.find((b) => b.labels.le === "+Inf")!.value, 3);
  });

  it("/v1/models: context length and quantization", async () => {
    const m = (await raw(srv, "/v1/models")).json.data[0];
    assert.equal(m.context_length, 512);
    assert.equal(m.max_model_len, 512);
    assert.equal(typeof m.quantization, "string");
    assert.match(m.quantization, /^(f32|bf16|f16|q[0-9a-z_]+)(\+[a-z0-9_]+)*$/);
  });
});
