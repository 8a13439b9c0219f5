// Load test of a running ManagedLM server with the official openai client: N concurrent streaming requests.
// Usage: node load.mjs BASE_URL [--requests 64] [--max-tokens 64] [--prompt TEXT] [--chat] [--api-key K]
// Prints requests, errors, latency and time-to-first-token percentiles, and aggregate generated tokens/s.
import OpenAI from "openai";

const args = process.argv.slice(2);
const baseURL = args[0];
const option = (name, fallback) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : fallback; };
const requests = Number(option("--requests", 64));
const maxTokens = Number(option("--max-tokens", 64));
const prompt = option("--prompt", "Once upon a time");
const chat = args.includes("--chat");
const client = new OpenAI({ baseURL, apiKey: option("--api-key", "unused"), maxRetries: 0, timeout: 600_000 });
const model = (await client.models.list()).data[0].id;

async function one(i) {
  const started = performance.now();
  let first = null, tokens = 0;
  const body = { model, max_tokens: maxTokens, temperature: 0.8, seed: i, stream: true, stream_options: { include_usage: true }, ignore_eos: true };
  const stream = chat
    ? await client.chat.completions.create({ ...body, messages: [{ role: "user", content: prompt }] })
    : await client.completions.create({ ...body, prompt });
  for await (const chunk of stream) {
    const text = chat ? chunk.choices[0]?.delta?.content : chunk.choices[0]?.text;
    if (text && first === null) first = performance.now() - started;
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  return { seconds: (performance.now() - started) / 1000, first: (first ?? 0) / 1000, tokens };
}

const started = performance.now();
const outcomes = await Promise.allSettled(Array.from({ length: requests }, (_, i) => one(i)));
const seconds = (performance.now() - started) / 1000;
const ok = outcomes.filter(o => o.status === "fulfilled").map(o => o.value);
const errors = outcomes.filter(o => o.status === "rejected");
const pct = (values, q) => { const s = [...values].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? 0; };
const tokens = ok.reduce((n, o) => n + o.tokens, 0);
const report = {
  requests, errors: errors.length, tokens, seconds: +seconds.toFixed(2), tokens_per_second: +(tokens / seconds).toFixed(1),
  latency_p50: +pct(ok.map(o => o.seconds), 0.5).toFixed(2), latency_p95: +pct(ok.map(o => o.seconds), 0.95).toFixed(2),
  first_token_p50: +pct(ok.map(o => o.first), 0.5).toFixed(2), first_token_p95: +pct(ok.map(o => o.first), 0.95).toFixed(2),
};
if (errors.length) report.first_error = String(errors[0].reason);
console.log(JSON.stringify(report));
