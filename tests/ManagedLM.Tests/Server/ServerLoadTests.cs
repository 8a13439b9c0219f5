using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;
using ManagedLM.Server;
using Xunit.Abstractions;

namespace ManagedLM.Tests.Server;

/// <summary>
/// 64 concurrent streaming requests on loopback: every one completes, greedy and seeded ones equal their single-request
/// runs, the managed heap stays bounded, and /health answers during the load. Figures go to the test output, never into
/// assertions.
/// </summary>
[Collection(ProcessHeapMeasurements.Name)]
public class ServerLoadTests(ITestOutputHelper output)
{
    private const int Requests = 64;
    private static readonly string[] Openings =
    [
        "Once upon a time", "The little dog", "Lily and Ben", "One day, a bird", "Tom had a big red ball", "The sun was hot",
        "In the park", "Mom said",
    ];

    private sealed record Plan(string Prompt, int MaxTokens, float Temperature, ulong Seed);

    [Fact]
    public async Task Sixty_four_concurrent_streams_complete_and_equal_their_solo_runs()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        var rng = new Random(64);
        var plans = Enumerable.Range(0, Requests).Select(i => new Plan(
            Openings[rng.Next(Openings.Length)], 24 + rng.Next(72), i % 2 == 0 ? 0f : 0.8f, (ulong)(1000 + i))).ToArray();

        long heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        await using var server = await OpenAiServer.StartAsync(model, new ServerOptions
        {
            Port = 0, Engine = new BatchEngineOptions { MaxActiveSequences = 16, Threads = 2, ContextLength = 512 },
        });
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 128 }) { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromMinutes(5) };

        var clock = Stopwatch.StartNew();
        var runs = plans.Select(p => Task.Run(() => StreamOne(http, p))).ToArray();
        var health = new List<double>();
        while (!runs.All(r => r.IsCompleted))
        {
            var h = Stopwatch.StartNew();
            var reply = await Api.Get(http, "/health");
            Assert.Equal(HttpStatusCode.OK, reply.Status);
            health.Add(h.Elapsed.TotalMilliseconds);
            await Task.WhenAny(Task.WhenAll(runs), Task.Delay(20));
        }
        var results = await Task.WhenAll(runs);
        double seconds = clock.Elapsed.TotalSeconds;
        long heapAfter = GC.GetTotalMemory(forceFullCollection: true);

        for (int i = 0; i < Requests; i++)
        {
            var p = plans[i];
            using var g = model.CreateGenerator(new GeneratorOptions { ContextLength = 512 });
            var solo = g.Complete(model.Tokenizer.Encode(p.Prompt, true, true), new GenerationOptions
            {
                MaxTokens = p.MaxTokens,
                Sampling = p.Temperature == 0 ? SamplingOptions.Greedy : SamplingOptions.Default with { Temperature = p.Temperature, Seed = p.Seed },
            });
            Assert.Equal(solo.Text, results[i].Text);
            Assert.Equal(solo.GeneratedTokens.Length, results[i].CompletionTokens);
        }
        Assert.True(health.Count > 0);
        Assert.True(heapAfter - heapBefore < 64 << 20, $"managed heap grew by {(heapAfter - heapBefore) >> 20} MiB");
        var m = server.Engine.Metrics;
        Assert.Equal(Requests, m.Completed);
        Assert.Equal(0, m.Rejected + m.Cancelled);

        var latencies = results.Select(r => r.Seconds).Order().ToArray();
        long tokens = results.Sum(r => (long)r.CompletionTokens);
        output.WriteLine($"{Requests} requests, 0 errors, {tokens} tokens in {seconds:F2} s: {tokens / seconds:F0} tokens/s aggregate; " +
            $"latency p50 {Percentile(latencies, 0.5):F2} s, p95 {Percentile(latencies, 0.95):F2} s; time to first token p50 " +
            $"{Percentile(results.Select(r => r.FirstToken).Order().ToArray(), 0.5):F2} s; mean batch {m.MeanBatchSize:F1}; " +
            $"/health {health.Count} calls, median {health.Order().ElementAt(health.Count / 2):F0} ms, max {health.Max():F0} ms; heap {(heapAfter - heapBefore) / 1e6:F1} MB more after the load");
    }

    private sealed record Outcome(string Text, int CompletionTokens, double Seconds, double FirstToken);

    private static async Task<Outcome> StreamOne(HttpClient http, Plan p)
    {
        string body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["prompt"] = p.Prompt, ["max_tokens"] = p.MaxTokens, ["temperature"] = p.Temperature, ["seed"] = p.Seed, ["stream"] = true,
            ["stream_options"] = new Dictionary<string, object> { ["include_usage"] = true },
        });
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var text = new StringBuilder();
        int tokens = -1;
        double first = 0;
        bool done = false;
        await foreach (string data in Api.Events(reader))
        {
            if (data == "[DONE]")
            {
                done = true;
                continue;
            }
            using var chunk = JsonDocument.Parse(data);
            if (first == 0)
                first = clock.Elapsed.TotalSeconds;
            if (chunk.RootElement.TryGetProperty("usage", out var usage))
                tokens = usage.GetProperty("completion_tokens").GetInt32();
            foreach (var c in chunk.RootElement.GetProperty("choices").EnumerateArray())
                text.Append(c.GetProperty("text").GetString());
        }
        Assert.True(done, "the stream ended with [DONE]");
        return new Outcome(text.ToString(), tokens, clock.Elapsed.TotalSeconds, first);
    }

    private static double Percentile(double[] sorted, double q) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)];
}

/// <summary>Tests that read the whole process's heap run alone, after the parallel ones, so others' allocations don't count.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessHeapMeasurements
{
    public const string Name = "Process heap measurements";
}
