using System.Net;
using System.Text.Json;
using ManagedLM.Generation;
using ManagedLM.Batching;
using ManagedLM.Model;
using ManagedLM.Server;
using ManagedLM.Tests.Model;

namespace ManagedLM.Tests.Server;

/// <summary>A model that produces NaN logits for a request: a 500 (or a stream's error event) with code non_finite_logits, and the server serves on.</summary>
public class NonFiniteLogitsServerTests
{
    [Fact]
    public async Task Nan_logits_are_a_500_server_error_with_code_non_finite_logits_and_the_server_serves_on()
    {
        using var model = TransformerModel.Load(ModelBytes.StoriesWithNaNEmbedding());
        await using var server = await OpenAiServer.StartAsync(model, new ServerOptions
        {
            Port = 0, Engine = new BatchEngineOptions { MaxActiveSequences = 2, Threads = 1, ContextLength = 256 },
        });
        using var http = ServerFixture.Client(server);

        var reply = await Api.Post(http, "/v1/completions", """{"prompt": "Timmy said", "max_tokens": 4}""");
        Assert.Equal(HttpStatusCode.InternalServerError, reply.Status);
        var error = reply.Body.GetProperty("error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.Equal("non_finite_logits", error.GetProperty("code").GetString());
        Assert.StartsWith("The model produced non-finite logits", reply.ErrorMessage);

        var events = await Api.Stream(http, "/v1/completions", """{"prompt": "Timmy said", "stream": true, "max_tokens": 4}""");
        using (var last = JsonDocument.Parse(events[^1]))
            Assert.Equal("non_finite_logits", last.RootElement.GetProperty("error").GetProperty("code").GetString());

        var ok = await Api.Post(http, "/v1/completions", """{"prompt": "Once upon a time", "max_tokens": 4, "temperature": 0}""");
        Assert.Equal(HttpStatusCode.OK, ok.Status);
        using var g = model.CreateGenerator();
        Assert.Equal(g.Generate("Once upon a time", new() { MaxTokens = 4, Sampling = ManagedLM.Sampling.SamplingOptions.Greedy }),
            ok.Body.GetProperty("choices")[0].GetProperty("text").GetString());
    }
}
