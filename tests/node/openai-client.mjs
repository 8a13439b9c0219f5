// Talks to a running ManagedLM server with the official openai package and checks what a client relies on.
// Usage: node openai-client.mjs BASE_URL [API_KEY]. Prints one JSON object of what it saw; exits 1 on a failed check.
import OpenAI from "openai";

const [baseURL, apiKey = "unused"] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const report = {};

function check(condition, message) {
  if (!condition) throw new Error("check failed: " + message);
}

const models = await client.models.list();
report.models = models.data.map(m => m.id);
check(models.data.length === 1 && models.data[0].object === "model", "one model listed");
const model = models.data[0].id;

const messages = [{ role: "system", content: "You tell short stories." }, { role: "user", content: "Tell me about a cat." }];
const chat = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 24 });
const text = chat.choices[0].message.content;
report.chat = { text, finish_reason: chat.choices[0].finish_reason, usage: chat.usage };
check(chat.object === "chat.completion" && chat.choices[0].message.role === "assistant", "chat completion shape");
check(typeof text === "string" && text.length > 0, "chat text");
check(chat.usage.completion_tokens > 0 && chat.usage.total_tokens === chat.usage.prompt_tokens + chat.usage.completion_tokens, "chat usage");

const stream = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 24, stream: true, stream_options: { include_usage: true } });
let streamed = "", chunks = 0, finish = null, usage = null, role = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  const choice = chunk.choices[0];
  if (!choice) continue;
  role ??= choice.delta.role ?? null;
  streamed += choice.delta.content ?? "";
  finish = choice.finish_reason ?? finish;
}
report.chatStream = { text: streamed, chunks, finish_reason: finish, usage };
check(role === "assistant", "the stream names the assistant's role");
check(streamed === text, `streamed text equals the whole reply: ${JSON.stringify(streamed)} vs ${JSON.stringify(text)}`);
check(finish === chat.choices[0].finish_reason, "stream finish_reason");
check(usage && usage.completion_tokens === chat.usage.completion_tokens, "stream usage");
check(chunks >= 3, "several chunks");

const completion = await client.completions.create({ model, prompt: "Once upon a time", temperature: 0, max_tokens: 16, logprobs: 2 });
report.completion = { text: completion.choices[0].text, usage: completion.usage };
check(completion.object === "text_completion" && completion.choices[0].text.length > 0, "completion");
check(completion.choices[0].logprobs.tokens.length === completion.usage.completion_tokens, "completion logprobs per token");

const completionStream = await client.completions.create({ model, prompt: "Once upon a time", temperature: 0, max_tokens: 16, stream: true });
let streamedCompletion = "";
for await (const chunk of completionStream) streamedCompletion += chunk.choices[0]?.text ?? "";
check(streamedCompletion === completion.choices[0].text, "streamed completion equals the whole one");

const seeded = [];
for (let i = 0; i < 2; i++) {
  const r = await client.chat.completions.create({ model, messages, temperature: 1, seed: 42, max_tokens: 16 });
  seeded.push(r.choices[0].message.content);
}
check(seeded[0] === seeded[1], "the same seed gives the same reply");

try {
  await client.chat.completions.create({ model, messages, temperature: 5 });
  check(false, "temperature 5 is rejected");
} catch (e) {
  check(e instanceof OpenAI.APIError && e.status === 400, "a 400 APIError: " + e);
  report.error = { status: e.status, param: e.param, message: e.error?.message };
  check(e.param === "temperature", "the error names the field");
}

console.log(JSON.stringify(report));
