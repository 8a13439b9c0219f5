using System.Text.Json;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Samples;

/// <summary>The README's "Many requests at once": four ways to run prompts in parallel on one model.</summary>
internal static class ManyRequests
{
    /// <summary>Prints one JSON object: each way's texts, in prompt order.</summary>
    public static async Task RunAsync(TransformerModel model, CancellationToken ct)
    {
        #region readme: many-requests
        string[] prompts = ["Once upon a time", "Tom had a ball", "The sun was hot", "Lily saw a cat"];
        var options = new GenerationOptions { MaxTokens = 32, Sampling = SamplingOptions.Greedy };

        // Task.Run per prompt
        var results = await Task.WhenAll(prompts.Select(p => Task.Run(async () =>
        {
            using var g = model.CreateGenerator();
            return await g.GenerateAsync(p, options, ct);             // GenerationResult: ids, text, reason, tokens/s
        })));

        // Parallel.For over a batch: results in input order, progress, seed + i per item when asked
        var progress = new Progress<int>(done => Console.Error.WriteLine($"{done}/{prompts.Length} done"));
        GenerationResult[] batch = model.BatchGenerate(prompts, options,
            new BatchOptions { MaxDegreeOfParallelism = 4, VarySeedPerItem = true }, progress);

        // ThreadLocal generators
        var outputs = new string[prompts.Length];
        using var local = new ThreadLocal<Generator>(() => model.CreateGenerator(), trackAllValues: true);
        Parallel.For(0, prompts.Length, i => outputs[i] = local.Value!.Generate(prompts[i], options));
        foreach (var generator in local.Values)
            generator.Dispose();

        // A bounded pool (rent waits when all are out; returning resets the generator)
        using var pool = new GeneratorPool(model, maxSize: 8);
        string answer;
        using (var lease = await pool.RentAsync(ct))
            answer = lease.Generator.Generate(prompts[0], options);
        #endregion

        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["prompts"] = prompts,
            ["task_run"] = results.Select(r => r.Text),
            ["batch_generate"] = batch.Select(r => r.Text),
            ["thread_local"] = outputs,
            ["pool"] = answer,
        }));
    }
}
