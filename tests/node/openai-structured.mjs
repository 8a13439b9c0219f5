// Structured output and tool calls through the official openai package against a running ManagedLM server.
// Usage: node openai-structured.mjs BASE_URL. Prints one JSON object of what it saw (the C# test validates the JSON
// against the schemas); exits 1 on a failed check.
import OpenAI from "openai";

const [baseURL] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 60_000 });
const report = {};

function check(condition, message) {
  if (!condition) throw new Error("check failed: " + message);
}

const model = (await client.models.list()).data[0].id;
const messages = [{ role: "user", content: "What is the weather in Paris?" }];
const schema = {
  type: "object",
  properties: { city: { type: "string", maxLength: 12 }, celsius: { type: "integer", minimum: -40, maximum: 50 } },
  required: ["city", "celsius"], additionalProperties: false,
};

// response_format: json_schema, whole and streamed.
const structured = await client.chat.completions.create({
  model, messages, temperature: 1, seed: 3, max_tokens: 300,
  response_format: { type: "json_schema", json_schema: { name: "weather", strict: true, schema } },
});
report.jsonSchema = { content: structured.choices[0].message.content, finish_reason: structured.choices[0].finish_reason };
check(structured.choices[0].finish_reason === "stop", "a bounded schema ends by itself");

let streamedJson = "";
const jsonStream = await client.chat.completions.create({
  model, messages, temperature: 1, seed: 3, max_tokens: 300, stream: true,
  response_format: { type: "json_schema", json_schema: { name: "weather", strict: true, schema } },
});
for await (const chunk of jsonStream) streamedJson += chunk.choices[0]?.delta?.content ?? "";
check(streamedJson === report.jsonSchema.content, "the streamed JSON equals the whole reply");

const jsonObject = await client.chat.completions.create({ model, messages, temperature: 1, seed: 5, max_tokens: 40, response_format: { type: "json_object" } });
report.jsonObject = { content: jsonObject.choices[0].message.content, finish_reason: jsonObject.choices[0].finish_reason };

// Tools: a required call, whole and streamed.
const tools = [{
  type: "function",
  function: { name: "get_weather", description: "Current weather of a city", parameters: schema },
}];
const called = await client.chat.completions.create({ model, messages, tools, tool_choice: "required", temperature: 1, seed: 7, max_tokens: 300 });
const message = called.choices[0].message;
report.toolCall = { finish_reason: called.choices[0].finish_reason, tool_calls: message.tool_calls, content: message.content };
check(called.choices[0].finish_reason === "tool_calls", "finish_reason tool_calls");
check(message.tool_calls?.length >= 1 && message.tool_calls[0].type === "function" && message.tool_calls[0].function.name === "get_weather", "a get_weather call");
check(typeof message.tool_calls[0].id === "string" && message.tool_calls[0].id.length > 0, "the call has an id");

const toolStream = await client.chat.completions.create({ model, messages, tools, tool_choice: "required", temperature: 1, seed: 7, max_tokens: 300, stream: true });
const calls = [];
let finish = null;
for await (const chunk of toolStream) {
  const choice = chunk.choices[0];
  if (!choice) continue;
  finish = choice.finish_reason ?? finish;
  for (const d of choice.delta.tool_calls ?? []) {
    calls[d.index] ??= { id: "", name: "", arguments: "" };
    if (d.id) calls[d.index].id = d.id;
    if (d.function?.name) calls[d.index].name = d.function.name;
    calls[d.index].arguments += d.function?.arguments ?? "";
  }
}
report.toolStream = { finish_reason: finish, calls };
check(finish === "tool_calls", "the stream ends with tool_calls");
check(calls.length === message.tool_calls.length && calls.every((c, i) => c.name === message.tool_calls[i].function.name
  && c.arguments === message.tool_calls[i].function.arguments), "streamed calls equal the whole reply's");

// The conversation goes on with the tool's result.
const followUp = await client.chat.completions.create({
  model, temperature: 0, max_tokens: 16,
  messages: [...messages, message, { role: "tool", tool_call_id: message.tool_calls[0].id, content: "{\"celsius\": 21}" }],
  tools,
});
report.followUp = { content: followUp.choices[0].message.content, finish_reason: followUp.choices[0].finish_reason };

try {
  await client.chat.completions.create({ model, messages, tools, tool_choice: { type: "function", function: { name: "nope" } } });
  check(false, "an unknown function in tool_choice is rejected");
} catch (e) {
  check(e instanceof OpenAI.APIError && e.status === 400, "a 400 APIError: " + e);
  report.error = { status: e.status, param: e.param, message: e.error?.message };
}

console.log(JSON.stringify(report));
