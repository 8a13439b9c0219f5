using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Gguf;
using ManagedLM.Model;
using ManagedLM.Sampling;
using ManagedLM.Tests.Embeddings;
using ManagedLM.Tests.Model;

namespace ManagedLM.Tests.Batching;

/// <summary>The engines' instruments on the "ManagedLM" meter, as a <see cref="MeterListener"/> (or OpenTelemetry) collects them.</summary>
public class EngineTelemetryTests
{
    private sealed record Recorded(string Instrument, double Value, Dictionary<string, object?> Tags);

    // Measurements of the instruments whose gen_ai.request.model is `model` (other tests' engines run beside these).
    private static MeterListener Listen(string model, ConcurrentQueue<Recorded> into)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "ManagedLM")
                    l.EnableMeasurementEvents(instrument);
            },
        };
        void Add(Instrument i, double v, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var t = new Dictionary<string, object?>();
            foreach (var kv in tags)
                t[kv.Key] = kv.Value;
            if (Equals(t.GetValueOrDefault("gen_ai.request.model"), model))
                into.Enqueue(new Recorded(i.Name, v, t));
        }
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
        listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Add(i, v, tags));
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
        listener.Start();
        return listener;
    }

    [Fact]
    public async Task A_batch_engine_records_token_usage_latencies_batch_sizes_and_gauges()
    {
        using var model = TransformerModel.Load(ModelBytes.StoriesWith("general.name", GgufValue.Of("telemetry-batch")));
        var seen = new ConcurrentQueue<Recorded>();
        using var listener = Listen("telemetry-batch", seen);
        using (var engine = new BatchEngine(model, new BatchEngineOptions { MaxActiveSequences = 4, Threads = 1, ContextLength = 64 }))
        {
            var options = new GenerationOptions { MaxTokens = 8, IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Greedy };
            string[] prompts = ["Once upon a time", "The cat", "Lily and Tom went"];
            var results = await Task.WhenAll(prompts.Select(p => engine.GenerateAsync(p, options)));
            listener.RecordObservableInstruments();

            var usage = seen.Where(r => r.Instrument == "gen_ai.client.token.usage").ToList();
            Assert.Equal(results.Select(r => (double)r.PromptTokens.Length).Order(), usage.Where(r => Equals(r.Tags["gen_ai.token.type"], "input")).Select(r => r.Value).Order());
            Assert.Equal([8.0, 8.0, 8.0], usage.Where(r => Equals(r.Tags["gen_ai.token.type"], "output")).Select(r => r.Value));
            Assert.All(usage, r => Assert.Equal(("text_completion", "managedlm"), (r.Tags["gen_ai.operation.name"], r.Tags["gen_ai.provider.name"])));
            foreach (string name in new[] { "gen_ai.server.request.duration", "gen_ai.server.time_to_first_token", "gen_ai.server.time_per_output_token" })
                Assert.Equal(3, seen.Count(r => r.Instrument == name && r.Value > 0));
            var first = seen.Where(r => r.Instrument == "gen_ai.server.time_to_first_token").Sum(r => r.Value);
            Assert.True(first <= seen.Where(r => r.Instrument == "gen_ai.server.request.duration").Sum(r => r.Value));
            var sizes = seen.Where(r => r.Instrument == "managedlm.engine.batch_size").Select(r => r.Value).ToList();
            Assert.Equal(engine.Metrics.Steps, sizes.Count);
            Assert.Contains(sizes, s => s > 1);
            Assert.Contains(seen, r => r.Instrument == "managedlm.engine.queue_depth" && r.Value == 0);
            Assert.Contains(seen, r => r.Instrument == "managedlm.engine.active_sequences" && r.Value == 0);
        }
    }

    [Fact]
    public async Task An_embedding_engine_records_input_tokens_per_request()
    {
        using var model = TransformerModel.Load(BertFixture.Bytes(m => ModelBytes.Set(m, "general.name", GgufValue.Of("telemetry-embed"))));
        var seen = new ConcurrentQueue<Recorded>();
        using var listener = Listen("telemetry-embed", seen);
        using var engine = new EmbeddingEngine(model, EmbeddingEngineOptions.Default with { Threads = 1 });
        var texts = BertFixture.Reference.Texts;
        await Task.WhenAll(texts.Select(t => engine.EmbedAsync([t.Tokens])));
        var usage = seen.Where(r => r.Instrument == "gen_ai.client.token.usage").ToList();
        Assert.Equal(texts.Select(t => (double)t.Tokens.Length).Order(), usage.Select(r => r.Value).Order());
        Assert.All(usage, r => Assert.Equal(("embeddings", "input"), (r.Tags["gen_ai.operation.name"], r.Tags["gen_ai.token.type"])));
        Assert.Equal(texts.Length, seen.Count(r => r.Instrument == "gen_ai.server.request.duration"));
        Assert.DoesNotContain(seen, r => r.Instrument == "gen_ai.server.time_to_first_token");
    }

    [Fact]
    public async Task Each_request_is_a_span_under_the_callers_with_its_usage()
    {
        using var model = TransformerModel.Load(ModelBytes.StoriesWith("general.name", GgufValue.Of("telemetry-trace")));
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "ManagedLM",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (Equals(a.GetTagItem("gen_ai.request.model"), "telemetry-trace"))
                    spans.Enqueue(a);
            },
        };
        ActivitySource.AddActivityListener(listener);
        using var caller = new ActivitySource("EngineTelemetryTests");
        using var callerListener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "EngineTelemetryTests",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(callerListener);

        using var engine = new BatchEngine(model, new BatchEngineOptions { MaxActiveSequences = 2, Threads = 1, ContextLength = 64 });
        var options = new GenerationOptions { MaxTokens = 6, IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Greedy };
        using (var parent = caller.StartActivity("handle request"))
        {
            var result = await engine.GenerateAsync("Once upon a time", options);
            Assert.Same(parent, Activity.Current); // the request's span did not become the caller's current one
            var span = Assert.Single(spans);
            Assert.Equal("text_completion telemetry-trace", span.DisplayName);
            Assert.Equal(parent!.SpanId, span.ParentSpanId);
            Assert.Equal((result.PromptTokens.Length, 6, 6), ((int)span.GetTagItem("gen_ai.usage.input_tokens")!, (int)span.GetTagItem("gen_ai.usage.output_tokens")!,
                (int)span.GetTagItem("gen_ai.request.max_tokens")!));
            Assert.Equal(["MaxTokens"], (string[])span.GetTagItem("gen_ai.response.finish_reasons")!);
            Assert.Equal(ActivityStatusCode.Unset, span.Status);
        }

        using var cancel = new CancellationTokenSource();
        var request = await engine.SubmitAsync("The cat", options with { MaxTokens = 1000 }, cancel.Token);
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request.Completion);
        for (int i = 0; i < 100 && spans.Count < 2; i++)
            await Task.Delay(10);
        Assert.Equal(ActivityStatusCode.Error, spans.Last().Status);
    }
}
