using System.Net;
using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Sampling;
using ManagedLM.Server;
using ManagedLM.Tests.Concurrency;

namespace ManagedLM.Tests.Server;

/// <summary>
/// The server's overflow policy: <c>ServerOptions.ContextOverflow</c> (serve --context-shift) and per request
/// <c>context_overflow</c>, <c>n_keep</c>, <c>n_discard</c>: a shifting stream goes on past the context with the tokens
/// a generator gives alone, stop ends at the context, truncate_history fits a long conversation, and bad values are 400s
/// naming the field.
/// </summary>
public class ServerContextOverflowTests(SharedModels models) : IClassFixture<SharedModels>
{
    private const int Context = 64;

    private async Task<(OpenAiServer Server, HttpClient Http)> Start(ContextOverflow overflow, int context = Context)
    {
        var server = await OpenAiServer.StartAsync(models.Stories, new ServerOptions
        {
            Port = 0, MaxTokensLimit = 1000, ContextOverflow = overflow,
            Engine = new BatchEngineOptions { MaxActiveSequences = 4, Threads = 2, ContextLength = context },
        });
        return (server, ServerFixture.Client(server));
    }

    private static int CompletionTokens(IEnumerable<string> events)
    {
        using var usage = JsonDocument.Parse(events.Last(e => e != "[DONE]" && e.Contains("\"usage\"", StringComparison.Ordinal)));
        return usage.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
    }

    private static string? FinishReason(IEnumerable<string> events) => events.Where(e => e != "[DONE]").Select(e =>
    {
        using var doc = JsonDocument.Parse(e);
        var choices = doc.RootElement.GetProperty("choices");
        return choices.GetArrayLength() > 0 && choices[0].GetProperty("finish_reason").ValueKind == JsonValueKind.String
            ? choices[0].GetProperty("finish_reason").GetString() : null;
    }).LastOrDefault(r => r is not null);

    private static string Completion(int maxTokens, string? overflow = null, int? keep = null) => JsonSerializer.Serialize(new Dictionary<string, object?>
    {
        ["prompt"] = "Once upon a time", ["max_tokens"] = maxTokens, ["temperature"] = 0, ["ignore_eos"] = true, ["stream"] = true,
        ["stream_options"] = new { include_usage = true }, ["context_overflow"] = overflow, ["n_keep"] = keep,
    });

    [Fact]
    public async Task With_context_shift_a_stream_goes_on_past_the_context_as_a_generator_alone_would()
    {
        var (server, http) = await Start(ContextOverflow.Shift);
        await using var _ = server;
        using var __ = http;

        var events = await Api.Stream(http, "/v1/completions", Completion(5 * Context, keep: 2));
        Assert.Equal(5 * Context, CompletionTokens(events));
        Assert.Equal("length", FinishReason(events));
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { ContextLength = Context });
        var solo = g.Complete(models.Stories.Tokenizer.Encode("Once upon a time", true, true), new GenerationOptions
        {
            MaxTokens = 5 * Context, IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Default with { Temperature = 0 },
            ContextOverflow = ContextOverflow.Shift, KeepTokens = 2,
        });
        Assert.True(solo.ContextShifts >= 5);
        Assert.Equal(solo.Text, Api.StreamedText(events));

        // A request may still ask to stop: it gets what the context leaves after its prompt (5 tokens).
        var stopped = await Api.Stream(http, "/v1/completions", Completion(5 * Context, "stop"));
        Assert.Equal(Context - 5, CompletionTokens(stopped));
        Assert.Equal("length", FinishReason(stopped));
    }

    [Fact]
    public async Task Without_it_a_request_may_ask_for_a_shift_and_bad_values_are_400s_naming_the_field()
    {
        var (server, http) = await Start(ContextOverflow.Stop);
        await using var _ = server;
        using var __ = http;

        Assert.Equal(Context - 5, CompletionTokens(await Api.Stream(http, "/v1/completions", Completion(3 * Context))));
        Assert.Equal(3 * Context, CompletionTokens(await Api.Stream(http, "/v1/completions", Completion(3 * Context, "shift"))));

        async Task Bad(string json, string param, string text)
        {
            var r = await Api.Post(http, "/v1/completions", json);
            Assert.Equal(HttpStatusCode.BadRequest, r.Status);
            Assert.Equal(param, r.ErrorParam);
            Assert.Contains(text, r.ErrorMessage);
        }
        await Bad("""{"prompt": "Once upon a time", "n_keep": -2}""", "n_keep", "≥ -1");
        await Bad("""{"prompt": "Once upon a time", "n_keep": "all"}""", "n_keep", "integer");
        await Bad("""{"prompt": "Once upon a time", "context_overflow": "shift", "n_keep": 9}""", "n_keep", "[-1, 4]");
        await Bad("""{"prompt": "Once upon a time", "n_discard": -1}""", "n_discard", "≥ 0");
        await Bad("""{"prompt": "Once upon a time", "context_overflow": "wrap"}""", "context_overflow", "truncate_history");
        int[] longPrompt = [1, .. Enumerable.Range(300, 61)];   // 62 tokens: more than the context − 4 a shift may keep
        await Bad(JsonSerializer.Serialize(new { prompt = longPrompt, context_overflow = "shift", n_keep = -1 }), "n_keep", "at most 60");
        // n_keep is not used by a request that stops.
        var ok = await Api.Post(http, "/v1/completions", """{"prompt": "Once upon a time", "n_keep": 9, "max_tokens": 2}""");
        Assert.Equal(HttpStatusCode.OK, ok.Status);
    }

    [Fact]
    public async Task Truncate_history_fits_a_conversation_longer_than_the_context()
    {
        const int context = 256;
        var (server, http) = await Start(ContextOverflow.Stop, context);
        await using var _ = server;
        using var __ = http;
        var messages = new List<object> { new { role = "system", content = "Tell stories." } };
        for (int i = 0; i < 24; i++)
        {
            messages.Add(new { role = "user", content = $"A story about {i} cats." });
            messages.Add(new { role = "assistant", content = "Once upon a time, there was a cat." });
        }
        messages.Add(new { role = "user", content = "And a dog?" });

        var refused = await Api.Post(http, "/v1/chat/completions", JsonSerializer.Serialize(new { messages, max_tokens = 8 }));
        Assert.Equal(HttpStatusCode.BadRequest, refused.Status);
        Assert.Equal("messages", refused.ErrorParam);

        var r = await Api.Post(http, "/v1/chat/completions", JsonSerializer.Serialize(new { messages, max_tokens = 8, context_overflow = "truncate_history", temperature = 0 }));
        Assert.Equal(HttpStatusCode.OK, r.Status);
        var usage = r.Body.GetProperty("usage");
        Assert.True(usage.GetProperty("prompt_tokens").GetInt32() + 8 <= context, usage.ToString());
        Assert.Equal(8, usage.GetProperty("completion_tokens").GetInt32());
    }
}
