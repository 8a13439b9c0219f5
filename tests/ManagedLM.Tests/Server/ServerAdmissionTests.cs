using System.Net;
using System.Text;
using ManagedLM.Batching;
using ManagedLM.Server;
using ManagedLM.Tests.Concurrency;

namespace ManagedLM.Tests.Server;

/// <summary>Who gets in and when: the API key, a full queue (429), and a client that goes away (its request leaves the batch).</summary>
public class ServerAdmissionTests(SharedModels models) : IClassFixture<SharedModels>
{
    // Thousands of tokens on the 50257-token model: still running when the test acts on it.
    private const string Endless = """{"prompt": "Once upon a time", "max_tokens": 4000, "ignore_eos": true, "stream": true}""";

    [Fact]
    public async Task With_an_API_key_the_API_needs_the_bearer_token_and_health_and_the_page_do_not()
    {
        await using var server = await OpenAiServer.StartAsync(models.Stories, new ServerOptions { Port = 0, ApiKey = "s3cret-key" });
        using var http = ServerFixture.Client(server);
        const string body = """{"prompt": "Once", "max_tokens": 2}""";

        var none = await Api.Post(http, "/v1/completions", body);
        Assert.Equal(HttpStatusCode.Unauthorized, none.Status);
        Assert.Equal("invalid_api_key", none.Body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("Bearer", none.Headers.WwwAuthenticate.Single().Scheme);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Api.Post(http, "/v1/completions", body, apiKey: "s3cret-kez")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Api.Post(http, "/v1/completions", body, apiKey: "s3cret-key-and-more")).Status);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Api.Get(http, "/v1/models", apiKey: "")).Status);
        using (var metrics = await http.GetAsync("/metrics"))
            Assert.Equal(HttpStatusCode.Unauthorized, metrics.StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await Api.Post(http, "/v1/completions", body, apiKey: "s3cret-key")).Status);
        Assert.Equal(HttpStatusCode.OK, (await Api.Get(http, "/v1/models", apiKey: "s3cret-key")).Status);
        Assert.Equal(HttpStatusCode.OK, (await Api.Get(http, "/health")).Status);
        using var page = await http.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
    }

    [Fact]
    public async Task A_full_queue_answers_429_with_Retry_After()
    {
        await using var server = await OpenAiServer.StartAsync(models.Gpt2Vocab, new ServerOptions
        {
            Port = 0, Engine = new BatchEngineOptions { MaxActiveSequences = 1, MaxQueuedRequests = 1, Threads = 1 },
        });
        using var http = ServerFixture.Client(server);
        using var running = await Open(http, Endless);
        await FirstEvent(running);   // in the batch
        using var cts = new CancellationTokenSource();
        var queued = http.SendAsync(Request(Endless), HttpCompletionOption.ResponseHeadersRead, cts.Token);
        while (server.Engine.Metrics.Queued == 0)
            await Task.Delay(1);

        var refused = await Api.Post(http, "/v1/completions", """{"prompt": "Mom said", "max_tokens": 2}""");
        Assert.Equal(HttpStatusCode.TooManyRequests, refused.Status);
        Assert.Equal(TimeSpan.FromSeconds(1), refused.Headers.RetryAfter?.Delta);
        Assert.Equal("queue_full", refused.Body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal(1, server.Engine.Metrics.Rejected);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => queued);
    }

    [Fact]
    public async Task A_client_that_disconnects_leaves_the_batch()
    {
        await using var server = await OpenAiServer.StartAsync(models.Gpt2Vocab, new ServerOptions
        {
            Port = 0, Engine = new BatchEngineOptions { MaxActiveSequences = 4, Threads = 1 },
        });
        using var http = ServerFixture.Client(server);
        var stream = await Open(http, Endless);
        await FirstEvent(stream);
        Assert.Equal(1, server.Engine.Metrics.Active);
        stream.Dispose();   // closes the connection mid-stream

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (server.Engine.Metrics is { Active: > 0 } or { Cancelled: 0 } && DateTime.UtcNow < deadline)
            await Task.Delay(5);
        var m = server.Engine.Metrics;
        Assert.Equal(0, m.Active);
        Assert.Equal(1, m.Cancelled);
        Assert.True(m.GeneratedTokens < 4000, $"{m.GeneratedTokens} tokens: the request should have stopped early");

        // The same for a non-streaming request: cancelling the HTTP call ends the generation.
        using var cts = new CancellationTokenSource();
        var whole = http.PostAsync("/v1/completions", new StringContent(Endless.Replace("\"stream\": true", "\"stream\": false"), Encoding.UTF8), cts.Token);
        while (server.Engine.Metrics.Active == 0)
            await Task.Delay(1);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => whole);
        while (server.Engine.Metrics is { Active: > 0 } or { Cancelled: < 2 } && DateTime.UtcNow < deadline)
            await Task.Delay(5);
        Assert.Equal(2, server.Engine.Metrics.Cancelled);
        Assert.Equal(0, server.Engine.Metrics.Active);
    }

    private static HttpRequestMessage Request(string body) =>
        new(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };

    // Returns once the first token has been sent (completion streams send their headers with it).
    private static Task<HttpResponseMessage> Open(HttpClient http, string body) => http.SendAsync(Request(body), HttpCompletionOption.ResponseHeadersRead);

    private static async Task FirstEvent(HttpResponseMessage response)
    {
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.StartsWith("data: ", await reader.ReadLineAsync());
    }
}
