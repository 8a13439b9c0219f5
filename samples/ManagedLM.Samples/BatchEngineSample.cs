using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Samples;

/// <summary>The README's "One batch for many requests": a <see cref="BatchEngine"/> used every way it offers.</summary>
internal static class BatchEngineSample
{
    /// <summary>Prints the streamed text, then a line of JSON: the texts of the other requests and the metrics' lines (at the end of the README's code, and once all is done).</summary>
    public static async Task RunAsync(TransformerModel model, CancellationToken ct)
    {
        #region readme: batch-engine
        var options = new GenerationOptions { MaxTokens = 32, Sampling = SamplingOptions.Greedy };
        await using var engine = new BatchEngine(model, new BatchEngineOptions { MaxActiveSequences = 16, MaxQueuedRequests = 256 });

        GenerationResult r = await engine.GenerateAsync("Once upon a time", options, ct);   // from any thread
        await foreach (TokenOutput t in engine.GenerateStreamingAsync("Tom had a ball", options, ct))
            Console.Write(t.Text);                                      // breaking out cancels the request

        BatchRequest req = await engine.SubmitAsync("The sun was hot", options, ct);   // waits while the queue is full
        GenerationResult submitted = await req.Completion;              // or read req.Tokens as they come
        if (!engine.TrySubmit("Lily saw a cat", options, out var queued)) { /* full: reject (HTTP 429) */ }
        BatchEngineMetrics m = engine.Metrics;                          // active, queued, batch sizes, tokens/s
        #endregion

        GenerationResult? tried = queued is null ? null : await queued.Completion;

        Console.WriteLine();
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["generate"] = r.Text,
            ["submitted"] = submitted.Text,
            ["try_submit"] = tried?.Text,
            ["metrics_then"] = m.ToString(),
            ["metrics"] = engine.Metrics.ToString(),
        }));
    }
}
