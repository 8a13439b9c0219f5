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
/// for all B). Reports the aggregate decode tokens/s (B · n_gen / time) and its ratio to B = 1.
/// </summary>
internal static class BatchedBench
{
    public sealed record BatchedResult(int Sequences, int Threads, int NPrompt, int NGen, double[] Seconds)
    {
        public double[] TokensPerSecond => Seconds.Select(s => Sequences * NGen / s).ToArray();
        public double AvgTs => TokensPerSecond.Average();
        public double StddevTs => BenchCommand.StdDev(TokensPerSecond);
    }

    public static IReadOnlyList<BatchedResult> Run(BenchCommand.BenchSettings s, int[] batches, bool json, TextWriter output)
    {
        int[] gens = BenchCommand.DecodeLengths(s, batches, "--batch");
        int prompt = s.PromptLengths.FirstOrDefault(p => p > 0, 32);

        using var model = TransformerModel.Load(s.ModelPath);
        var info = ModelSummary.Of(model, s.ModelPath);
        if (!json)
        {
            output.WriteLine($"| {"model",-32} | {"threads",7} | {"B",4} | {"test",10} | {"aggregate t/s",20} | {"vs B=1",6} |");
            output.WriteLine($"| {new string('-', 32)} | {new string('-', 7)} | {new string('-', 4)} | {new string('-', 10)} | {new string('-', 20)} | {new string('-', 6)} |");
        }
        var results = new List<BatchedResult>();
        foreach (int t in s.Threads)
        {
            using var decoder = new BatchDecoder(model, t);
            foreach (int ng in gens)
            {
                double? single = null;
                foreach (int b in batches)
                {
                    var r = RunTest(model, decoder, b, prompt, ng, s.Repetitions);
                    results.Add(r);
                    if (b == 1)
                        single = r.AvgTs;
                    if (json)
                        output.WriteLine(JsonLine(info, r));
                    else
                    {
                        string ratio = single is { } one ? $"{r.AvgTs / one:F2}x" : "";
                        output.WriteLine($"| {info.Type,-32} | {t,7} | {b,4} | {$"pp{prompt}+tg{ng}",10} | {r.AvgTs,10:F2} ± {r.StddevTs,7:F2} | {ratio,6} |");
                    }
                    output.Flush();
                }
            }
        }
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
            for (int rep = -1; rep < repetitions; rep++) // rep -1 warms up
            {
                for (int i = 0; i < sequences; i++)
                {
                    generators[i].Reset();
                    int[] tokens = Enumerable.Range(0, prompt).Select(_ => (int)(rng.NextUInt64() % (ulong)vocab)).ToArray();
                    items[i] = new BatchItem(generators[i], tokens);
                }
                decoder.Decode(items);
                var clock = Stopwatch.StartNew();
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
            return new BatchedResult(sequences, decoder.Threads, prompt, nGen, seconds);
        }
        finally
        {
            foreach (var g in generators)
                g.Dispose();
        }
    }

    private static string JsonLine(ModelSummary info, BatchedResult r)
    {
        var o = BenchCommand.JsonHeader(info, "batched");
        o["n_sequences"] = r.Sequences;
        o["n_threads"] = r.Threads;
        o["n_prompt"] = r.NPrompt;
        o["n_gen"] = r.NGen;
        o["speed_tg"] = Math.Round(r.AvgTs, 6);
        o["stddev_tg"] = Math.Round(r.StddevTs, 6);
        o["samples_ts"] = r.TokensPerSecond.Select(v => Math.Round(v, 6)).ToArray();
        return JsonSerializer.Serialize(o);
    }
}
