using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace ManagedLM.Tests.Server;

/// <summary>
/// A campaign of malformed requests from a fixed seed: every one is answered with its 4xx in OpenAI's error shape (no 5xx,
/// no dropped connection), and a normal request gets the same text before, during and after it. A longer campaign runs
/// by hand: MANAGEDLM_CAMPAIGN_REQUESTS=100000 MANAGEDLM_CAMPAIGN_SEED=7 dotnet test --filter MalformedRequestCampaign.
/// </summary>
public class MalformedRequestCampaignTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const int Concurrent = 4;

    [Fact]
    public async Task Every_malformed_request_is_a_4xx_and_the_server_answers_as_before()
    {
        int count = int.Parse(Environment.GetEnvironmentVariable("MANAGEDLM_CAMPAIGN_REQUESTS") ?? "640");
        int seed = int.Parse(Environment.GetEnvironmentVariable("MANAGEDLM_CAMPAIGN_SEED") ?? "13");
        var random = new Random(seed);
        var (chat, completion) = (await NormalChat(), await NormalCompletion());
        var kinds = new HashSet<string>();
        for (int sent = 0; sent < count; sent += Concurrent)
        {
            var requests = Enumerable.Range(0, Math.Min(Concurrent, count - sent)).Select(_ => MalformedRequests.Next(random)).ToList();
            await Task.WhenAll(requests.Select(Send));
            kinds.UnionWith(requests.Select(r => r.Kind));
            if (sent % 64 == 0)
                Assert.Equal(chat, await NormalChat());
        }
        Assert.Equal(chat, await NormalChat());
        Assert.Equal(completion, await NormalCompletion());
        Assert.Equal(MalformedRequests.Kinds.Count, kinds.Count);
        var health = await Api.Get(fixture.Http, "/health");
        Assert.Equal(0, health.Body.GetProperty("active").GetInt32());
        Assert.Equal(0, health.Body.GetProperty("queued").GetInt32());
    }

    private async Task Send(MalformedRequest request)
    {
        using var message = new HttpRequestMessage(request.Method, request.Path);
        if (request.Body is not null)
        {
            message.Content = new ByteArrayContent(request.Body);
            if (request.ContentType is not null)
                message.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(request.ContentType);
        }
        // As a well-behaved uploader of a large body: the server may refuse it (413) before it is sent.
        message.Headers.ExpectContinue = request.Body is { Length: > 16 << 10 };
        HttpResponseMessage response;
        try
        {
            response = await fixture.Http.SendAsync(message);
        }
        catch (HttpRequestException e)
        {
            Assert.Fail($"{request}: the connection dropped: {e.Message}");
            throw;
        }
        using (response)
        {
            string text = await response.Content.ReadAsStringAsync();
            Assert.True((int)response.StatusCode == request.Status, $"{request}: {(int)response.StatusCode} {text}");
            Assert.True(response.Content.Headers.ContentType?.MediaType == "application/json", $"{request}: {response.Content.Headers.ContentType} {text}");
            using var doc = JsonDocument.Parse(text);
            var error = doc.RootElement.GetProperty("error");
            Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()), $"{request}: {text}");
            Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
            Assert.True(error.GetProperty("param").ValueKind is JsonValueKind.String or JsonValueKind.Null, $"{request}: {text}");
            Assert.True(error.GetProperty("code").ValueKind is JsonValueKind.String or JsonValueKind.Null, $"{request}: {text}");
        }
    }

    private async Task<string> NormalChat()
    {
        var r = await Api.Post(fixture.Http, "/v1/chat/completions",
            """{"messages": [{"role": "system", "content": "You tell stories."}, {"role": "user", "content": "Tell me about a cat."}], "max_tokens": 24, "temperature": 0}""");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        return r.Body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
    }

    private async Task<string> NormalCompletion()
    {
        var r = await Api.Post(fixture.Http, "/v1/completions", """{"prompt": "Once upon a time", "max_tokens": 24, "seed": 5, "temperature": 0.8}""");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        return r.Body.GetProperty("choices")[0].GetProperty("text").GetString()!;
    }
}

/// <summary>One request of the campaign: what kind of malformation, the request as sent, and the status it must get.</summary>
public sealed record MalformedRequest(string Kind, HttpMethod Method, string Path, byte[]? Body, string? ContentType = "application/json", int Status = 400)
{
    public override string ToString()
    {
        string body = Body is null ? "" : Encoding.UTF8.GetString(Body, 0, Math.Min(Body.Length, 200));
        return $"[{Kind}] {Method} {Path} ({ContentType}, {Body?.Length ?? 0} bytes) {body}";
    }
}

/// <summary>
/// Malformed requests of many kinds, built from a <see cref="Random"/>: bad JSON, wrong types, out-of-range and huge
/// numbers, deep nesting, text that is not Unicode, bad roles, missing and empty fields, prompts that cannot fit, bad
/// logit_bias, stop, tools and token ids, unknown endpoints and methods, bodies that are not JSON or over the limit,
/// keys given twice. Each kind is built so that the request is invalid, whatever the draw.
/// </summary>
public static class MalformedRequests
{
    private const string Chat = "/v1/chat/completions";
    private const string Completions = "/v1/completions";
    private const string Messages = """[{"role": "user", "content": "Hi"}]""";

    // The fields a chat request may carry, with values of a type each rejects.
    private static readonly (string Field, string[] Wrong)[] Typed =
    [
        ("messages", ["\"Hi\"", "1", "{}", "[1]", "[\"Hi\"]", "[[]]", "true"]),
        ("model", ["1", "true", "[]", "{}"]),
        ("user", ["1", "false", "[\"u\"]", "{}"]),
        ("temperature", ["\"0.5\"", "true", "[]", "{}", "\"NaN\"", "\"Infinity\""]),
        ("top_p", ["\"1\"", "false", "[1]", "{}"]),
        ("top_k", ["\"5\"", "1.5", "true", "[5]", "{}"]),
        ("min_p", ["\"0.1\"", "true", "[]", "{}"]),
        ("max_tokens", ["\"5\"", "2.5", "true", "[5]", "{}"]),
        ("max_completion_tokens", ["\"5\"", "2.5", "false", "{}"]),
        ("stream", ["1", "\"true\"", "[]", "{}"]),
        ("stream_options", ["1", "\"x\"", "[]", "true"]),
        ("stop", ["1", "true", "{}", "[1]", "[[]]", "[null]"]),
        ("seed", ["\"1\"", "1.5", "true", "[]"]),
        ("n", ["\"1\"", "1.5", "true", "{}"]),
        ("logprobs", ["1", "\"true\"", "[]"]),
        ("top_logprobs", ["\"2\"", "2.5", "true"]),
        ("presence_penalty", ["\"0\"", "true", "[]"]),
        ("frequency_penalty", ["\"0\"", "false", "{}"]),
        ("repeat_penalty", ["\"1\"", "true", "[]"]),
        ("logit_bias", ["1", "\"x\"", "[1]", "true"]),
        ("tools", ["1", "\"x\"", "{}", "true", "[1]"]),
        ("ignore_eos", ["1", "\"yes\"", "[]"]),
    ];

    private static readonly string[] NumberFields =
        ["temperature", "top_p", "top_k", "min_p", "max_tokens", "seed", "n", "top_logprobs", "presence_penalty", "frequency_penalty"];

    // Chat bodies with ☠ where text goes (replaced by bytes that are not Unicode text).
    private static readonly (string Path, string Body)[] TextSlots =
    [
        (Chat, """{"messages": [{"role": "user", "content": "a☠"}]}"""),
        (Chat, """{"messages": [{"role": "user", "content": [{"type": "text", "text": "☠"}]}]}"""),
        (Chat, """{"messages": [{"role": "☠", "content": "Hi"}]}"""),
        (Chat, $$"""{"messages": {{Messages}}, "stop": ["x", "☠"]}"""),
        (Chat, $$$"""{"messages": {{{Messages}}}, "logit_bias": {"☠": 1}}"""),
        (Chat, $$"""{"messages": {{Messages}}, "user": "☠", "model": "m"}"""),
        (Chat, $$"""{"messages": {{Messages}}, "☠": 1}"""),
        (Completions, """{"prompt": "☠"}"""),
        (Completions, """{"prompt": ["☠"], "stop": "x"}"""),
        ("/tokenize", """{"content": "x☠y"}"""),
        ("/detokenize", """{"tokens": [1], "x": "☠"}"""),
    ];

    private static readonly byte[][] NotText =
    [
        "\\ud800"u8.ToArray(), "\\udc00\\ud800"u8.ToArray(), "\\udfff"u8.ToArray(), "\\ud800\\u0041"u8.ToArray(),
        [0x80], [0xFF], [0xFE, 0xFF], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xE2, 0x82], [0xF5, 0x80, 0x80, 0x80],
    ];

    private static readonly Dictionary<string, Func<Random, MalformedRequest>> Builders = new()
    {
        ["invalid JSON"] = r => Post(r, Pick(r, "{", "{\"messages\": }", "{'prompt': 'x'}", "[1,]", "nul", "{\"prompt\" \"x\"}", "{\"prompt\": \"x\",}",
            "{\"prompt\": NaN}", "{\"prompt\": \"x\"} trailing", "\u00ff\u00fe", "{\"prompt\": \"\t\"}", Garbage(r))),
        ["truncated JSON"] = r =>
        {
            string body = $$"""{"messages": {{Messages}}, "max_tokens": 2, "stop": ["x"]}""";
            return Post(r, body[..r.Next(body.Length)], Chat);
        },
        ["wrong type"] = r =>
        {
            var (field, wrong) = Typed[r.Next(Typed.Length)];
            return Post(r, field == "messages" ? $$"""{"messages": {{Pick(r, wrong)}}}""" : $$"""{"messages": {{Messages}}, "{{field}}": {{Pick(r, wrong)}}}""", Chat);
        },
        ["wrong prompt type"] = r => Post(r, $$"""{"prompt": {{Pick(r, "1", "true", "{}", "[true]", "[[1]]", "[1.5]", "[\"a\", \"b\"]", "[1, \"a\"]", "null")}}}""", Completions),
        ["huge number"] = r => Post(r, $$"""{"messages": {{Messages}}, "{{Pick(r, NumberFields)}}": {{Pick(r, "1e400", "-1e400", "1e300", "-1e300", "99999999999999999999", "1e20")}}}""", Chat),
        ["out of range"] = r => Post(r, $$"""{"messages": {{Messages}}, {{Pick(r, "\"temperature\": 2.1", "\"temperature\": -0.5", "\"top_p\": 0", "\"top_p\": 1.5",
            "\"min_p\": -0.1", "\"min_p\": 1.5", "\"presence_penalty\": 2.5", "\"frequency_penalty\": -3", "\"logprobs\": true, \"top_logprobs\": 21",
            "\"top_logprobs\": 3", "\"n\": 0", "\"n\": 2", "\"max_tokens\": -1", "\"top_k\": -5", "\"repeat_penalty\": 0", "\"repeat_penalty\": -1", "\"repeat_penalty\": 1e300",
            "\"max_completion_tokens\": -3")}}}""", Chat),
        ["huge max_tokens"] = r => Post(r, $$"""{"prompt": "Once", "max_tokens": {{r.Next(ServerFixture.MaxTokensLimit + 1, int.MaxValue)}}}""", Completions),
        ["deep nesting"] = r =>
        {
            int depth = r.Next(1, 3) == 1 ? r.Next(65, 5000) : r.Next(2, 60);
            string open = Pick(r, "[", "{\"a\": "), close = open == "[" ? "]" : "}";
            string nested = string.Concat(Enumerable.Repeat(open, depth)) + "1" + string.Concat(Enumerable.Repeat(close, depth));
            return depth > 64
                ? Post(r, $$"""{"messages": {{Messages}}, "x": {{nested}}}""", Chat)
                : Post(r, $$"""{"messages": {{Messages}}, "{{Pick(r, "stop", "logit_bias", "tools", "user", "max_tokens")}}": {{nested}}}""", Chat);
        },
        ["not Unicode"] = r =>
        {
            var (path, body) = TextSlots[r.Next(TextSlots.Length)];
            byte[] bytes = Encoding.UTF8.GetBytes(body), marker = "☠"u8.ToArray(), bad = NotText[r.Next(NotText.Length)];
            int at = bytes.AsSpan().IndexOf(marker);
            return new MalformedRequest("", HttpMethod.Post, path, [.. bytes[..at], .. bad, .. bytes[(at + marker.Length)..]]);
        },
        ["empty role"] = r => Post(r, """{"messages": [{"role": "system", "content": "x"}, {"role": "", "content": "Hi"}]}""", Chat),
        ["unknown role"] = r => Post(r, $$"""{"messages": [{"role": "{{Pick(r, "wizard", "ipython", "User", "bot", "model", "human", " user", "assistant ", "tool_results")}}", "content": "Hi"}]}""", Chat),
        ["missing field"] = r => Pick(r,
            Post(r, """{"max_tokens": 2, "temperature": 0}""", Chat),
            Post(r, """{"max_tokens": 2}""", Completions),
            Post(r, """{"text": "x"}""", "/tokenize"),
            Post(r, """{"content": "x"}""", "/detokenize"),
            Post(r, """{"messages": [{"content": "Hi"}]}""", Chat),
            Post(r, """{}""", Chat)),
        ["empty array"] = r => Pick(r, Post(r, """{"messages": []}""", Chat), Post(r, """{"prompt": []}""", Completions)),
        ["huge prompt"] = r =>
        {
            // Beyond what 512 tokens of 9 bytes cover, or within it but over 512 tokens once tokenized.
            string text = r.Next(2) == 0
                ? new string((char)r.Next('a', 'z' + 1), r.Next(ServerFixture.Context * 9 + 1, 60_000))
                : string.Concat(Enumerable.Repeat("Once upon a time. ", r.Next(200, 250)));
            return r.Next(2) == 0
                ? Post(r, JsonSerializer.Serialize(new { prompt = text }), Completions)
                : Post(r, JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = text } } }), Chat);
        },
        ["bad logit_bias"] = r => Post(r, $$$"""{"messages": {{{Messages}}}, "logit_bias": {{{{Pick(r, "\"abc\": 1", "\"-1\": 1", "\"1.5\": 1", "\"99999\": 1",
            "\"5\": \"x\"", "\"5\": 101", "\"5\": -101", "\"5\": [1]", "\"\": 1", "\" 5\": 1", "\"5\": null", "\"+5\": 1", "\"0x5\": 1")}}}}}""", Chat),
        ["bad stop"] = r => Post(r, $$"""{"messages": {{Messages}}, "stop": {{Pick(r, "[\"a\", \"b\", \"c\", \"d\", \"e\"]", "[1]", "[null]", "[[\"a\"]]", "[{}]", "[true]", "[\"a\", 2]")}}}""", Chat),
        ["bad message"] = r => Post(r, $$"""{"messages": [{{Pick(r, "1", "\"Hi\"", "null", "[]", "{\"role\": 5, \"content\": \"Hi\"}", "{\"role\": \"user\", \"content\": 5}",
            "{\"role\": \"user\", \"content\": {}}", "{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"x\"}}]}",
            "{\"role\": \"user\", \"content\": [5]}", "{\"role\": \"user\", \"content\": [{\"type\": 5}]}", "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": 5}]}",
            "{\"role\": \"assistant\", \"tool_calls\": 5}", "{\"role\": \"assistant\", \"tool_calls\": [5]}", "{\"role\": \"assistant\", \"tool_calls\": [{\"function\": 5}]}",
            "{\"role\": \"assistant\", \"tool_calls\": [{\"id\": 5, \"function\": {\"name\": \"f\"}}]}", "{\"role\": \"tool\", \"content\": \"x\", \"tool_call_id\": 5}")}}]}""", Chat),
        ["bad tools"] = r => Post(r, $$"""{"messages": {{Messages}}, "tools": [{{Pick(r, "1", "null", "[]", "{}", "{\"type\": \"retrieval\"}", "{\"type\": \"function\"}",
            "{\"type\": \"function\", \"function\": 5}", "{\"type\": \"function\", \"function\": {}}", "{\"type\": \"function\", \"function\": {\"name\": 5}}",
            "{\"type\": \"function\", \"function\": {\"name\": \"\"}}")}}]}""", Chat),
        ["bad token ids"] = r => Pick(r,
            Post(r, $$"""{"prompt": [1, {{Pick(r, "-1", "99999", "2147483648", "1e3")}}]}""", Completions),
            Post(r, $$"""{"tokens": {{Pick(r, "[-1]", "[99999]", "[\"1\"]", "[1.5]", "\"1\"", "{}", "[[1]]", "null")}}}""", "/detokenize"),
            Post(r, $$"""{"content": {{Pick(r, "5", "[\"x\"]", "{}", "null")}}}""", "/tokenize"),
            Post(r, $$"""{"content": "x", "{{Pick(r, "add_special", "parse_special", "with_pieces")}}": {{Pick(r, "1", "\"yes\"", "[]")}}}""", "/tokenize")),
        ["embeddings"] = r => Pick(r,
            Post(r, $$"""{"input": {{Pick(r, "5", "[]", "{}", "null", "[1.5]", "[[]]", "[[1, -1]]", "[\"x\", 5]", "[[1], \"x\", {}]")}}}""", "/v1/embeddings"),
            Post(r, $$"""{"input": "x", "{{Pick(r, "dimensions", "encoding_format")}}": {{Pick(r, "0", "-3", "100000", "\"int8\"", "[]", "1.5")}}}""", "/v1/embeddings"),
            Post(r, $$"""{"query": {{Pick(r, "5", "null", "\"q\"")}}, "documents": {{Pick(r, "[]", "\"d\"", "[5]", "null")}}}""", "/v1/rerank")),
        ["unknown endpoint"] = r =>
        {
            var (method, path) = Pick(r, (HttpMethod.Post, "/v1/audio/speech"), (HttpMethod.Get, "/v2/models"), (HttpMethod.Post, "/v1/chat/completion"),
                (HttpMethod.Get, "/v1/models/nope"), (HttpMethod.Post, "/v1/images/generations"), (HttpMethod.Get, "/v1/%FF%FE"), (HttpMethod.Post, "/v1//completions"),
                (HttpMethod.Get, "/tokenize/x"), (HttpMethod.Get, "/" + new string('a', 2000)));
            return new MalformedRequest("", method, path, method == HttpMethod.Post ? Encoding.UTF8.GetBytes("""{"prompt": "x"}""") : null, Status: 404);
        },
        ["wrong method"] = r =>
        {
            var (method, path) = Pick(r, (HttpMethod.Get, Chat), (HttpMethod.Put, Completions), (HttpMethod.Delete, "/tokenize"), (HttpMethod.Post, "/v1/models"),
                (HttpMethod.Post, "/health"), (HttpMethod.Patch, "/detokenize"), (HttpMethod.Get, "/completions"), (HttpMethod.Put, "/metrics"), (HttpMethod.Options, Chat));
            return new MalformedRequest("", method, path, method == HttpMethod.Get ? null : Encoding.UTF8.GetBytes("""{"prompt": "x"}"""), Status: 405);
        },
        ["not JSON"] = r => Pick(r,
            new MalformedRequest("", HttpMethod.Post, Completions, "prompt=hello&max_tokens=2"u8.ToArray(), "application/x-www-form-urlencoded"),
            new MalformedRequest("", HttpMethod.Post, Chat, "hello"u8.ToArray(), "text/plain"),
            new MalformedRequest("", HttpMethod.Post, Chat, "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--b--\r\n"u8.ToArray(), "multipart/form-data; boundary=b"),
            new MalformedRequest("", HttpMethod.Post, "/tokenize", [0x1F, 0x8B, 0x08, 0x00, 0x00], "application/gzip"),
            new MalformedRequest("", HttpMethod.Post, Completions, [], null),
            new MalformedRequest("", HttpMethod.Post, Chat, "<messages/>"u8.ToArray(), "application/xml")),
        ["oversized body"] = r => Post(r, JsonSerializer.Serialize(new { prompt = new string('a', r.Next(65 << 10, 256 << 10)) }), Pick(r, Chat, Completions, "/tokenize")) with { Status = 413 },
        ["duplicate key"] = r => Pick(r,
            Post(r, """{"prompt": "a", "prompt": "b"}""", Completions),
            Post(r, """{"messages": [{"role": "user", "content": "Hi", "content": "Ho"}]}""", Chat),
            Post(r, $$$"""{"messages": {{{Messages}}}, "logit_bias": {"5": 1, "5": 2}}""", Chat),
            Post(r, """{"content": "x", "\u0063ontent": "y"}""", "/tokenize")),
        ["wrong root"] = r => Post(r, Pick(r, "[]", "\"x\"", "1", "null", "true", $$"""[{"messages": {{Messages}}}]"""), Pick(r, Chat, Completions, "/tokenize", "/detokenize")),
    };

    /// <summary>The kinds of malformation.</summary>
    public static IReadOnlyCollection<string> Kinds => Builders.Keys;

    /// <summary>A request of a kind drawn from <paramref name="random"/>.</summary>
    public static MalformedRequest Next(Random random)
    {
        var kinds = Builders.Keys.ToArray();
        string kind = kinds[random.Next(kinds.Length)];
        return Builders[kind](random) with { Kind = kind };
    }

    private static MalformedRequest Post(Random r, string body, string? path = null) =>
        new("", HttpMethod.Post, path ?? Pick(r, Chat, Completions, "/tokenize", "/detokenize"), Encoding.UTF8.GetBytes(body));

    private static T Pick<T>(Random r, params T[] choices) => choices[r.Next(choices.Length)];

    private static string Garbage(Random r) => new(Enumerable.Range(0, r.Next(1, 40)).Select(_ => (char)r.Next(0x20, 0x7F)).Where(c => c != '{').ToArray());
}
