using System.Collections.Immutable;
using System.Diagnostics;
using System.Text.Json;
using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm bench --batch 1,2,4,8,16`, after llama.cpp's batched-bench: B sequences, each with its own KV cache and a
/// prompt of n_prompt tokens, decode together through one <see cref="BatchDecoder"/> (one pass over the weights per step
/// for all B). Reports the aggregate decode tokens/s (B · n_gen / time) and its ratio to B = 1, the prompt tokens/s of
/// the B prompts evaluated together, the time to the first token and the tokens/s of each stream. With `--engine` the
/// same load goes through a <see cref="BatchEngine"/> fed by B concurrent submitters (its overhead over the raw steps).
/// </summary>
internal static class BatchedBench
{
    /// <summary>One batch size: decode seconds per repetition, and the prompt phase (all B prompts) of each.</summary>
    public sealed record BatchedResult(int Sequences, int Threads, int NPrompt, int NGen, double[] Seconds, double[] PromptSeconds, bool Engine)
    {
        public double[] TokensPerSecond => Seconds.Select(s => Sequences * NGen / s).ToArray();
        public double AvgTs => TokensPerSecond.Average();
        public double StddevTs => BenchCommand.StdDev(TokensPerSecond);
        /// <summary>Prompt tokens per second, all sequences together.</summary>
        public double PromptTs => PromptSeconds.Select(s => Sequences * NPrompt / s).Average();
        /// <summary>Seconds from submission to the first generated token of every sequence.</summary>
        public double TimeToFirstToken => PromptSeconds.Average();
        public double PerStreamTs => AvgTs / Sequences;
    }

    private static readonly ImmutableArray<BenchColumn> Columns =
    [
        new("model", 32, Left: true), new("threads", 7), new("B", 4), new("test", 10), new("aggregate t/s", 20), new("vs B=1", 6),
        new("per stream", 10), new("pp t/s", 8), new("first token", 11),
    ];

    public static IReadOnlyList<BatchedResult> Run(BenchCommand.BenchSettings s, int[] batches, bool json, TextWriter output, bool engine = false,
        TextWriter? log = null)
    {
        int[] gens = BenchCommand.DecodeLengths(s, batches, "--batch");
        int prompt = s.PromptLengths.FirstOrDefault(p => p > 0, 32);

        using var model = ModelLoading.Load(s.ModelPath, log);
        log?.WriteLine(Kernels.CpuFeatures.Description);
        var info = ModelSummary.Of(model, s.ModelPath);
        var results = new List<BatchedResult>();
        BenchTable.Run(output, json, Columns, report =>
        {
            foreach (int t in s.Threads)
            {
                using var decoder = new BatchDecoder(model, t);
                foreach (int ng in gens)
                {
                    double? single = null;
                    foreach (int b in batches)
                    {
                        var r = engine ? RunEngine(model, t, b, prompt, ng, s.Repetitions) : RunTest(model, decoder, b, prompt, ng, s.Repetitions);
                        results.Add(r);
                        if (b == 1)
                            single = r.AvgTs;
                        report(JsonLine(info, r), [info.Type, $"{t}", $"{b}", $"pp{prompt}+tg{ng}", BenchCommand.TokensPerSecond(r.AvgTs, r.StddevTs),
                            single is { } one ? $"{r.AvgTs / one:F2}x" : "", $"{r.PerStreamTs:F2}", $"{r.PromptTs:F1}", $"{r.TimeToFirstToken * 1000,8:F1} ms"]);
                    }
                }
            }
        });
        return results;
    }

    private static BatchedResult RunTest(TransformerModel model, BatchDecoder decoder, int sequences, int prompt, int nGen, int repetitions)
    {
        int vocab = model.Config.VocabSize;
        var options = new GeneratorOptions { ContextLength = Math.Min(model.MaxContextLength, prompt + nGen + 1), Sampling = SamplingOptions.Greedy };
        var generators = Enumerable.Range(0, sequences).Select(_ => model.CreateGenerator(options)).ToArray();
        try
        {
            var rng = new Xoshiro256(42);
            var items = new BatchItem[sequences];
            var next = Enumerable.Range(0, sequences).Select(_ => new int[1]).ToArray();
            var seconds = new double[repetitions];
            var promptSeconds = new double[repetitions];
            for (int rep = -1; rep < repetitions; rep++) // rep -1 warms up
            {
                for (int i = 0; i < sequences; i++)
                {
                    generators[i].Reset();
                    int[] tokens = Enumerable.Range(0, prompt).Select(_ => (int)(rng.NextUInt64() % (ulong)vocab)).ToArray();
                    items[i] = new BatchItem(generators[i], tokens);
                }
                var clock = Stopwatch.StartNew();
                decoder.Decode(items);
                if (rep >= 0)
                    promptSeconds[rep] = clock.Elapsed.TotalSeconds;
                clock.Restart();
                for (int step = 0; step < nGen; step++)
                {
                    for (int i = 0; i < sequences; i++)
                    {
                        next[i][0] = (int)(rng.NextUInt64() % (ulong)vocab);
                        items[i] = new BatchItem(generators[i], next[i]);
                    }
                    decoder.Decode(items);
                }
                if (rep >= 0)
                    seconds[rep] = clock.Elapsed.TotalSeconds;
            }
            return new BatchedResult(sequences, decoder.Threads, prompt, nGen, seconds, promptSeconds, Engine: false);
        }
        finally
        {
            foreach (var g in generators)
                g.Dispose();
        }
    }

    // The same load through an engine: B submitters at once, each a prompt of random tokens and nGen tokens to generate.
    // Decode time runs from the last first token to the last token; the prompt phase from submission to the last first token.
    private static BatchedResult RunEngine(TransformerModel model, int threads, int sequences, int prompt, int nGen, int repetitions)
    {
        int vocab = model.Config.VocabSize;
        using var engine = new BatchEngine(model, new BatchEngineOptions
        {
            MaxActiveSequences = sequences, Threads = threads, PrefillChunk = sequences * prompt,
            ContextLength = Math.Min(model.MaxContextLength, prompt + nGen + 1), SharePrefixes = false,
        });
        var options = new GenerationOptions { MaxTokens = nGen, IgnoreEndOfGeneration = true, ReusePrefix = false, Sampling = SamplingOptions.Greedy };
        var rng = new Xoshiro256(42);
        var seconds = new double[repetitions];
        var promptSeconds = new double[repetitions];
        for (int rep = -1; rep < repetitions; rep++)
        {
            int[][] prompts = Enumerable.Range(0, sequences)
                .Select(_ => Enumerable.Range(0, prompt).Select(_ => (int)(rng.NextUInt64() % (ulong)vocab)).ToArray()).ToArray();
            var clock = Stopwatch.StartNew();
            var firsts = new double[sequences];
            var lasts = new double[sequences];
            var runs = prompts.Select((p, i) => Task.Run(async () =>
            {
                var request = await engine.SubmitAsync(p, options).ConfigureAwait(false);
                bool first = true;
                await foreach (var _ in request.Tokens.ConfigureAwait(false))
                {
                    if (first)
                        firsts[i] = clock.Elapsed.TotalSeconds;
                    first = false;
                }
                lasts[i] = clock.Elapsed.TotalSeconds;
            })).ToArray();
            Task.WaitAll(runs);
            if (rep >= 0)
            {
                promptSeconds[rep] = firsts.Max();
                seconds[rep] = lasts.Max() - firsts.Max();
            }
        }
        return new BatchedResult(sequences, threads, prompt, nGen, seconds, promptSeconds, Engine: true);
    }

    private static string JsonLine(ModelSummary info, BatchedResult r)
    {
        var o = BenchCommand.JsonHeader(info, r.Engine ? "engine" : "batched");
        o["n_parallel"] = r.Sequences;
        o["n_threads"] = r.Threads;
        o["n_prompt"] = r.NPrompt;
        o["n_gen"] = r.NGen;
        o["speed_pp"] = Math.Round(r.PromptTs, 6);
        o["speed_tg"] = Math.Round(r.AvgTs, 6);
        o["stddev_tg"] = Math.Round(r.StddevTs, 6);
        o["speed_tg_per_stream"] = Math.Round(r.PerStreamTs, 6);
        o["t_first_token"] = Math.Round(r.TimeToFirstToken, 6);
        o["samples_ts"] = r.TokensPerSecond.Select(v => Math.Round(v, 6)).ToArray();
        return JsonSerializer.Serialize(o);
    }
}
