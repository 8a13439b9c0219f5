// Embeddings and rerank-free checks against a running ManagedLM embedding server with the official openai package.
// Usage: node openai-embeddings.mjs BASE_URL. Prints one JSON object of what it saw; exits 1 on a failed check.
import OpenAI from "openai";

const [baseURL] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 60_000 });

function check(condition, message) {
  if (!condition) throw new Error("check failed: " + message);
}

const model = (await client.models.list()).data[0].id;
const input = ["Hello world!", "The quick brown fox jumps over the lazy dog."];
// The package asks for base64 by default and decodes it; ask for floats too.
const packed = await client.embeddings.create({ model, input });
const floats = await client.embeddings.create({ model, input, encoding_format: "float" });
const short = await client.embeddings.create({ model, input: input[0], dimensions: 8 });
check(packed.object === "list" && packed.data.length === 2, "two embeddings");
check(packed.data.every((d, i) => d.object === "embedding" && d.index === i), "embedding items");
check(packed.usage.prompt_tokens > 0 && packed.usage.total_tokens === packed.usage.prompt_tokens, "usage");
check(short.data[0].embedding.length === 8, "dimensions");
let error = null;
try {
  await client.embeddings.create({ model, input: "x", dimensions: 100000 });
} catch (e) {
  error = { status: e.status, param: e.param ?? e.error?.param ?? null };
}
check(error !== null && error.status === 400, "dimensions beyond the model's are a 400");
console.log(JSON.stringify({
  model,
  base64: packed.data.map(d => Array.from(d.embedding)),
  float: floats.data.map(d => d.embedding),
  usage: packed.usage,
  error,
}));
