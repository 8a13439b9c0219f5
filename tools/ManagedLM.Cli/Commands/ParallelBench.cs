using System.Collections.Immutable;
using System.Diagnostics;
using System.Text.Json;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm bench --parallel 1,2,4`: N independent generators on one shared model, each decoding on its
/// own thread at once. Reports the aggregate decode tokens/s (N · n_gen / wall time of the slowest), its
/// ratio to N = 1, and the process RSS with the N generators alive (weights are mapped once; each
/// generator adds its KV cache and scratch).
/// </summary>
internal static class ParallelBench
{
    /// <summary>One (N, threads, n_gen) test: wall seconds of each repetition and memory with the generators alive.</summary>
    public sealed record ParallelResult(int Parallel, int Threads, int NGen, double[] Seconds, long RssBytes, long KvBytes)
    {
        public double[] TokensPerSecond => Seconds.Select(s => Parallel * NGen / s).ToArray();
        public double AvgTs => TokensPerSecond.Average();
        public double StddevTs => BenchCommand.StdDev(TokensPerSecond);
    }

    private static readonly ImmutableArray<BenchColumn> Columns =
    [
        new("model", 32, Left: true), new("threads", 7), new("parallel", 8), new("test", 6), new("aggregate t/s", 20), new("vs N=1", 6),
        new("RSS", 10), new("KV", 10),
    ];

    public static IReadOnlyList<ParallelResult> Run(BenchCommand.BenchSettings s, int[] parallel, bool json, TextWriter output, TextWriter? log = null)
    {
        int[] gens = BenchCommand.DecodeLengths(s, parallel, "--parallel");

        using var model = s.LoadModel(log);
        var info = ModelSummary.Of(model, s.ModelPath);
        var results = new List<ParallelResult>();
        BenchTable.Run(output, json, Columns, report =>
        {
            foreach (int t in s.Threads)
            {
                foreach (int ng in gens)
                {
                    double? single = null;
                    foreach (int n in parallel)
                    {
                        var r = RunTest(model, n, t, ng, s.Repetitions, s.KvCacheType);
                        results.Add(r);
                        if (n == 1)
                            single = r.AvgTs;
                        report(JsonLine(info, r), [info.Type, $"{t}", $"{n}", $"tg{ng}", BenchCommand.TokensPerSecond(r.AvgTs, r.StddevTs),
                            single is { } one ? $"{r.AvgTs / one:F2}x" : "", BenchCommand.FormatBytes(r.RssBytes), BenchCommand.FormatBytes(r.KvBytes)]);
                    }
                }
            }
        });
        return results;
    }

    private static ParallelResult RunTest(TransformerModel model, int parallel, int threads, int nGen, int repetitions, Inference.KvCacheType kvCacheType)
    {
        int context = Math.Min(model.MaxContextLength, nGen + 1);
        var options = new GeneratorOptions { Threads = threads, ContextLength = context, KvCacheType = kvCacheType, Sampling = SamplingOptions.Greedy };
        var generators = Enumerable.Range(0, parallel).Select(_ => model.CreateGenerator(options)).ToArray();
        try
        {
            // Phases per repetition: everyone resets, the clock starts, everyone decodes, the clock stops.
            using var barrier = new Barrier(parallel + 1);
            var failures = new Exception?[parallel];
            var workers = new Thread[parallel];
            for (int i = 0; i < parallel; i++)
            {
                int index = i;
                workers[i] = new Thread(() => Decode(generators[index], index, nGen, repetitions, barrier, failures))
                {
                    IsBackground = true,
                    Name = $"bench generator {index}",
                };
                workers[i].Start();
            }
            var seconds = new double[repetitions];
            for (int rep = -1; rep < repetitions; rep++) // rep -1 warms up
            {
                barrier.SignalAndWait();
                var clock = Stopwatch.StartNew();
                barrier.SignalAndWait();
                if (rep >= 0)
                    seconds[rep] = clock.Elapsed.TotalSeconds;
            }
            foreach (var w in workers)
                w.Join();
            if (failures.FirstOrDefault(f => f is not null) is { } failure)
                throw new InvalidOperationException("A benchmark generator failed.", failure);

            GC.Collect();
            using var process = Process.GetCurrentProcess();
            return new ParallelResult(parallel, threads, nGen, seconds, process.WorkingSet64, generators.Sum(g => g.KvCacheBytes));
        }
        finally
        {
            foreach (var g in generators)
                g.Dispose();
        }
    }

    // Decodes nGen random tokens per repetition between the barrier's start and end phases.
    private static void Decode(Generator g, int index, int nGen, int repetitions, Barrier barrier, Exception?[] failures)
    {
        var rng = new Xoshiro256((ulong)(1234 + index));
        int vocab = g.Model.Config.VocabSize;
        for (int rep = -1; rep < repetitions; rep++)
        {
            try
            {
                g.Reset();
            }
            catch (Exception e)
            {
                failures[index] ??= e;
            }
            barrier.SignalAndWait();
            try
            {
                for (int i = 0; i < nGen && failures[index] is null; i++)
                    g.Step((int)(rng.NextUInt64() % (ulong)vocab));
            }
            catch (Exception e)
            {
                failures[index] ??= e;
            }
            barrier.SignalAndWait();
        }
    }

    private static string JsonLine(ModelSummary info, ParallelResult r)
    {
        var o = BenchCommand.JsonHeader(info, "parallel");
        o["n_parallel"] = r.Parallel;
        o["n_threads"] = r.Threads;
        o["n_gen"] = r.NGen;
        o["test_time"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        o["speed_tg"] = Math.Round(r.AvgTs, 6);
        o["stddev_tg"] = Math.Round(r.StddevTs, 6);
        o["samples_ts"] = r.TokensPerSecond.Select(v => Math.Round(v, 6)).ToArray();
        o["rss_mb"] = Math.Round(r.RssBytes / 1048576.0, 1);
        o["kv_mb"] = Math.Round(r.KvBytes / 1048576.0, 3);
        return JsonSerializer.Serialize(o);
    }
}
