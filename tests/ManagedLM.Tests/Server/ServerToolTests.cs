using System.Net;
using System.Text;
using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Chat;
using ManagedLM.Server;
using ManagedLM.Tests.Concurrency;
using ManagedLM.Tests.Grammars;

namespace ManagedLM.Tests.Server;

/// <summary>
/// Tool calls over HTTP: tools, tool_choice and parallel_tool_calls constrain the reply to calls whose arguments
/// validate against the tools' schemas; message.tool_calls, finish_reason "tool_calls", streamed delta.tool_calls;
/// reasoning in reasoning_content. The stories fixture's template is ChatML (the generic JSON format), the qwen2 one's
/// Qwen2.5's (Hermes &lt;tool_call&gt;).
/// </summary>
public class ServerToolTests(ServerFixture fixture, SharedModels models) : IClassFixture<ServerFixture>, IClassFixture<SharedModels>
{
    private const string WeatherSchema = """
        {"type": "object", "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["C", "F"]}},
         "required": ["city", "unit"], "additionalProperties": false}
        """;
    private const string TimeSchema = """{"type": "object", "properties": {"zone": {"type": "integer", "minimum": -12, "maximum": 14}}, "required": ["zone"]}""";

    private static readonly string Tools = $$$"""
        [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city", "parameters": {{{WeatherSchema}}}}},
         {"type": "function", "function": {"name": "get_time", "parameters": {{{TimeSchema}}}}}]
        """;

    private static string Body(string extra, int seed) =>
        $$$"""{"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": {{{Tools}}}, "max_tokens": 400, "temperature": 1, "seed": {{{seed}}}, {{{extra}}}}""";

    private static void AssertValidCall(JsonElement call)
    {
        Assert.Equal("function", call.GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(call.GetProperty("id").GetString()));
        string name = call.GetProperty("function").GetProperty("name").GetString()!;
        string arguments = call.GetProperty("function").GetProperty("arguments").GetString()!;
        string schema = name switch { "get_weather" => WeatherSchema, "get_time" => TimeSchema, _ => throw new Xunit.Sdk.XunitException($"unknown function {name}") };
        Assert.True(JsonSchemaTestValidator.IsValid(schema, arguments), $"{name}({arguments})");
    }

    public static TheoryData<int> Seeds => [1, 2, 3, 4];

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Required_tool_choice_gives_a_call_whose_arguments_validate_and_ends_by_itself(int seed)
    {
        await using var hermes = await HermesServer();
        foreach (var http in new[] { fixture.Http, hermes.Http })
        {
            var r = await Api.Post(http, "/v1/chat/completions", Body("\"tool_choice\": \"required\", \"parallel_tool_calls\": false", seed));
            Assert.Equal(HttpStatusCode.OK, r.Status);
            var choice = r.Body.GetProperty("choices")[0];
            Assert.True(choice.GetProperty("finish_reason").GetString() == "tool_calls", r.Body.ToString());
            var message = choice.GetProperty("message");
            AssertValidCall(Assert.Single(message.GetProperty("tool_calls").EnumerateArray()));
        }
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Parallel_calls_all_validate(int seed)
    {
        await using var hermes = await HermesServer();
        foreach (var http in new[] { fixture.Http, hermes.Http })
        {
            var r = await Api.Post(http, "/v1/chat/completions", Body("\"tool_choice\": \"required\"", seed).Replace("\"max_tokens\": 400", "\"max_tokens\": 200"));
            var choice = r.Body.GetProperty("choices")[0];
            // A random model seldom ends a list of calls: a reply cut by max_tokens keeps its finished calls.
            Assert.Contains(choice.GetProperty("finish_reason").GetString(), new[] { "tool_calls", "length" });
            var calls = choice.GetProperty("message").GetProperty("tool_calls");
            Assert.True(calls.GetArrayLength() >= 1, r.Body.ToString());
            foreach (var call in calls.EnumerateArray())
                AssertValidCall(call);
        }
    }

    [Fact]
    public async Task A_named_function_without_parallel_calls_gives_exactly_that_call()
    {
        await using var hermes = await HermesServer();
        foreach (var http in new[] { fixture.Http, hermes.Http })
        {
            var r = await Api.Post(http, "/v1/chat/completions",
                Body("""  "tool_choice": {"type": "function", "function": {"name": "get_time"}}, "parallel_tool_calls": false  """, 5));
            var call = Assert.Single(r.Body.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls").EnumerateArray());
            Assert.Equal("get_time", call.GetProperty("function").GetProperty("name").GetString());
            AssertValidCall(call);
        }
    }

    [Fact]
    public async Task Streamed_tool_calls_add_up_to_the_whole_reply()
    {
        await using var hermes = await HermesServer();
        foreach (var http in new[] { fixture.Http, hermes.Http })
        {
            string body = Body("\"tool_choice\": \"required\", \"parallel_tool_calls\": false", 6);
            var whole = await Api.Post(http, "/v1/chat/completions", body);
            var expected = whole.Body.GetProperty("choices")[0].GetProperty("message").GetProperty("tool_calls");
            var events = await Api.Stream(http, "/v1/chat/completions", body.Replace("\"seed\": 6", "\"seed\": 6, \"stream\": true"));
            var calls = new List<(string Id, string Name, StringBuilder Arguments)>();
            string? finish = null;
            foreach (string e in events.SkipLast(1))
            {
                var choice = JsonDocument.Parse(e).RootElement.GetProperty("choices")[0];
                if (choice.GetProperty("finish_reason").ValueKind == JsonValueKind.String)
                    finish = choice.GetProperty("finish_reason").GetString();
                if (!choice.GetProperty("delta").TryGetProperty("tool_calls", out var deltas))
                    continue;
                foreach (var d in deltas.EnumerateArray())
                {
                    int index = d.GetProperty("index").GetInt32();
                    if (d.TryGetProperty("id", out var id))
                    {
                        Assert.Equal(calls.Count, index);
                        calls.Add((id.GetString()!, d.GetProperty("function").GetProperty("name").GetString()!, new StringBuilder()));
                    }
                    calls[index].Arguments.Append(d.GetProperty("function").GetProperty("arguments").GetString());
                }
            }
            Assert.Equal("tool_calls", finish);
            Assert.Equal(expected.GetArrayLength(), calls.Count);
            for (int i = 0; i < calls.Count; i++)
            {
                Assert.Equal(expected[i].GetProperty("function").GetProperty("name").GetString(), calls[i].Name);
                Assert.Equal(expected[i].GetProperty("function").GetProperty("arguments").GetString(), calls[i].Arguments.ToString());
            }
        }
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public async Task Auto_replies_with_text_or_valid_calls(int seed)
    {
        var r = await Api.Post(fixture.Http, "/v1/chat/completions", Body("\"tool_choice\": \"auto\"", seed));
        var choice = r.Body.GetProperty("choices")[0];
        var message = choice.GetProperty("message");
        if (message.TryGetProperty("tool_calls", out var calls))
        {
            Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
            foreach (var call in calls.EnumerateArray())
                AssertValidCall(call);
        }
        else
        {
            Assert.Equal(JsonValueKind.String, message.GetProperty("content").ValueKind);
        }
    }

    [Fact]
    public async Task Tool_choice_none_replies_with_text_like_a_request_without_tools()
    {
        string plain = """{"messages": [{"role": "user", "content": "Weather in Paris?"}], "max_tokens": 12, "temperature": 0}""";
        var a = await Api.Post(fixture.Http, "/v1/chat/completions", plain);
        var b = await Api.Post(fixture.Http, "/v1/chat/completions", plain.Replace("\"temperature\": 0", $"\"temperature\": 0, \"tool_choice\": \"none\", \"tools\": {Tools}"));
        var m = b.Body.GetProperty("choices")[0].GetProperty("message");
        Assert.False(m.TryGetProperty("tool_calls", out _));
        Assert.NotEqual("tool_calls", b.Body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(JsonValueKind.String, m.GetProperty("content").ValueKind);
        Assert.Equal(a.Body.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), b.Body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_tool_result_continues_the_conversation()
    {
        await using var hermes = await HermesServer();
        var r = await Api.Post(hermes.Http, "/v1/chat/completions", $$$"""
            {"messages": [{"role": "user", "content": "Weather in Paris?"},
              {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\",\"unit\":\"C\"}"}}]},
              {"role": "tool", "tool_call_id": "call_1", "content": "{\"celsius\": 21}"}],
             "tools": {{{Tools}}}, "max_tokens": 8, "temperature": 0, "tool_choice": "none"}
            """);
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.True(r.Body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32() > 40);
    }

    [Theory]
    [InlineData("""  "tool_choice": {"type": "function", "function": {"name": "nope"}}  """, "tool_choice", "nope")]
    [InlineData("""  "tool_choice": "sometimes"  """, "tool_choice", "sometimes")]
    [InlineData("""  "tool_choice": 5  """, "tool_choice", "5")]
    [InlineData("""  "parallel_tool_calls": "yes"  """, "parallel_tool_calls", "boolean")]
    public async Task Invalid_tool_fields_are_a_400_naming_the_field(string extra, string param, string message)
    {
        var r = await Api.Post(fixture.Http, "/v1/chat/completions", Body(extra, 1));
        Assert.Equal(HttpStatusCode.BadRequest, r.Status);
        Assert.Equal(param, r.ErrorParam);
        Assert.Contains(message, r.ErrorMessage);
    }

    [Fact]
    public async Task Required_without_tools_and_unsupported_parameter_schemas_are_400s()
    {
        var a = await Api.Post(fixture.Http, "/v1/chat/completions", """{"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}""");
        Assert.Equal(HttpStatusCode.BadRequest, a.Status);
        Assert.Equal("tool_choice", a.ErrorParam);
        var b = await Api.Post(fixture.Http, "/v1/chat/completions",
            """{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "not": {}}}}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, b.Status);
        Assert.Equal("tools", b.ErrorParam);
        Assert.Contains("not", b.ErrorMessage);
    }

    [Fact]
    public async Task Reasoning_goes_to_reasoning_content_or_stays_inline()
    {
        // A template whose generation prompt opens the reasoning, and a grammar that closes it.
        var template = ChatTemplate.Parse("{% for m in messages %}{{ m.content }}{% endfor %}<think>\n");
        const string Body = """{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 50, "temperature": 1, "seed": 1, "grammar": "root ::= \"plan it\" \"</think>\" \" done.\""}""";
        await using (var split = await Serve(models.Stories, template, extractReasoning: true))
        {
            var m = (await Api.Post(split.Http, "/v1/chat/completions", Body)).Body.GetProperty("choices")[0].GetProperty("message");
            Assert.Equal("plan it", m.GetProperty("reasoning_content").GetString());
            Assert.Equal("done.", m.GetProperty("content").GetString());
            var events = await Api.Stream(split.Http, "/v1/chat/completions", Body.Replace("\"seed\": 1", "\"seed\": 1, \"stream\": true"));
            var (reasoning, content) = (new StringBuilder(), new StringBuilder());
            foreach (string e in events.SkipLast(1))
            {
                var delta = JsonDocument.Parse(e).RootElement.GetProperty("choices")[0].GetProperty("delta");
                if (delta.TryGetProperty("reasoning_content", out var r)) reasoning.Append(r.GetString());
                if (delta.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String) content.Append(c.GetString());
            }
            Assert.Equal("plan it", reasoning.ToString());
            Assert.Equal("done.", content.ToString());
        }
        await using (var inline = await Serve(models.Stories, template, extractReasoning: false))
        {
            var m = (await Api.Post(inline.Http, "/v1/chat/completions", Body)).Body.GetProperty("choices")[0].GetProperty("message");
            Assert.False(m.TryGetProperty("reasoning_content", out _));
            Assert.Equal("plan it</think> done.", m.GetProperty("content").GetString());
        }
    }

    private Task<TestServer> HermesServer() => Serve(models.Gpt2Vocab, null, extractReasoning: true);

    private static async Task<TestServer> Serve(ManagedLM.Model.TransformerModel model, ChatTemplate? template, bool extractReasoning)
    {
        var server = await OpenAiServer.StartAsync(model, new ServerOptions
        {
            Port = 0, ChatTemplate = template, ExtractReasoning = extractReasoning,
            Engine = new BatchEngineOptions { MaxActiveSequences = 2, Threads = 1, ContextLength = 1024 },
        });
        return new TestServer(server, ServerFixture.Client(server));
    }

    private sealed record TestServer(OpenAiServer Server, HttpClient Http) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await Server.DisposeAsync();
        }
    }
}
