using System.Collections.Immutable;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm bench`, after llama-bench: prompt processing (pp N) and generation (tg N) tokens/s with
/// mean ± stddev over repetitions, after a warm-up run. `--json` prints one llama-bench-style JSON
/// object per test (n_prompt, n_gen, n_threads, avg_ts, stddev_ts, ...). Generation tests also report the weight bytes
/// read per second (a decode step reads every matrix once) and their fraction of the memory bandwidth, which the bench
/// measures itself for each thread count. `--parallel 1,2,4` measures
/// aggregate decode tokens/s of N independent generators on N threads instead (see <see cref="ParallelBench"/>), and
/// `--batch 1,2,4` of B sequences decoded together in one batch (see <see cref="BatchedBench"/>).
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var prompt = CliOptions.IntList("--n-prompt", "-p", "Prompt lengths to test (tokens, comma-separated; 0 skips).", 128);
        var gen = CliOptions.IntList("--n-gen", "-n", "Generation lengths to test (tokens, comma-separated; 0 skips).", 64);
        var threads = CliOptions.IntList("--threads", "-t", "Thread counts to test (comma-separated).", Environment.ProcessorCount);
        var reps = new Option<int>("--repetitions", "-r") { Description = "Runs of each test.", DefaultValueFactory = _ => 5 }.AtLeast(1);
        var json = new Option<bool>("--json") { Description = "Print JSON lines (llama-bench -o jsonl fields) instead of a table." };
        var batched = CliOptions.IntList("--batch", "-B",
            "Sequences decoded together in one batch (comma-separated), after llama.cpp's batched-bench: aggregate tg tokens/s after a -p prompt each.");
        var viaEngine = new Option<bool>("--engine") { Description = "With --batch: run the load through a BatchEngine with B concurrent submitters." };
        var batch = new Option<int>("--ubatch-size", "-ub") { Description = "Prompt tokens per forward pass.", DefaultValueFactory = _ => 64 }.AtLeast(1);
        var parallel = CliOptions.IntList("--parallel", "-np",
            "Independent generators decoding at once, each on its own thread (comma-separated): reports aggregate tg tokens/s and RSS instead of pp/tg.");
        var command = new CliCommand("bench", "Measure prompt-processing and generation speed, like llama-bench.",
        [
            new("Prompt processing of 128 tokens and generation of 64, 5 runs each", "managedlm bench -m model.gguf"),
            new("Several lengths and thread counts, as JSON lines", "managedlm bench -m model.gguf -p 128,512 -n 32,128 -t 1,2,4 -r 3 --json"),
            new("Aggregate generation speed of 1 to 8 sequences decoded in one batch", "managedlm bench -m model.gguf -p 32 -n 64 --batch 1,2,4,8"),
            new("The same load through a BatchEngine with concurrent submitters", "managedlm bench -m model.gguf -n 64 --batch 1,4,16 --engine"),
            new("Independent generators decoding at once, each on its own thread", "managedlm bench -m model.gguf -n 64 --parallel 1,2,4 -t 1"),
        ])
        {
            model, prompt, gen, threads, reps, json, parallel, batched, viaEngine, batch,
        };
        command.SetAction(parse =>
        {
            var settings = new BenchSettings(
                ModelLocator.Resolve(parse.GetValue(model)), parse.GetValue(prompt)!, parse.GetValue(gen)!,
                parse.GetValue(threads)!, parse.GetValue(reps), parse.GetValue(batch));
            int[] np = parse.GetValue(parallel)!, nb = parse.GetValue(batched)!;
            var (output, log) = (parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error);
            if (nb.Length > 0)
                BatchedBench.Run(settings, nb, parse.GetValue(json), output, parse.GetValue(viaEngine), log);
            else if (np.Length > 0)
                ParallelBench.Run(settings, np, parse.GetValue(json), output, log);
            else
                Run(settings, parse.GetValue(json), output, log);
            return ExitCodes.Ok;
        });
        return command;
    }

    public sealed record BenchSettings(string ModelPath, int[] PromptLengths, int[] GenLengths, int[] Threads, int Repetitions,
        int BatchSize = 64);

    /// <summary>One test's result: tokens/s of each repetition; for generation, weight bytes per token and the memory bandwidth.</summary>
    public sealed record BenchResult(int NPrompt, int NGen, int Threads, double[] Seconds)
    {
        public long DecodeBytes { get; init; }
        /// <summary>Prompt tokens per forward pass.</summary>
        public int BatchSize { get; init; } = 64;
        /// <summary>Measured read bandwidth with this many threads, bytes/s (0 when not measured).</summary>
        public double Bandwidth { get; init; }
        /// <summary>Weight bytes read per second while generating, in GB/s.</summary>
        public double WeightsGbps => DecodeBytes * AvgTs / 1e9;
        public double BandwidthFraction => Bandwidth > 0 ? DecodeBytes * AvgTs / Bandwidth : 0;
        public int Tokens => NPrompt + NGen;
        public double[] TokensPerSecond => Seconds.Select(s => Tokens / s).ToArray();
        public double AvgTs => TokensPerSecond.Average();
        public double StddevTs => StdDev(TokensPerSecond);
        public string Name => NPrompt > 0 ? $"pp{NPrompt}" : $"tg{NGen}";
    }

    private static readonly ImmutableArray<BenchColumn> Columns =
    [
        new("model", 32, Left: true), new("size", 10), new("params", 10), new("threads", 7), new("test", 8), new("t/s", 20),
        new("weights GB/s", 12), new("of bandwidth", 16),
    ];

    /// <summary>Runs the tests, printing a table row or a JSON line for each; <paramref name="log"/> shows the model loading.</summary>
    public static IReadOnlyList<BenchResult> Run(BenchSettings s, bool json, TextWriter output, TextWriter? log = null)
    {
        if (s.Repetitions < 1)
            throw new ArgumentOutOfRangeException(nameof(s), s.Repetitions, "--repetitions must be at least 1.");
        if (s.Threads.Any(t => t < 1))
            throw new ArgumentOutOfRangeException(nameof(s), "--threads values must be at least 1.");
        using var model = ModelLoading.Load(s.ModelPath, log);
        log?.WriteLine(Kernels.CpuFeatures.Description);
        var info = ModelSummary.Of(model, s.ModelPath);
        var results = new List<BenchResult>();
        BenchTable.Run(output, json, Columns, report =>
        {
            foreach (int t in s.Threads)
            {
                var tests = s.PromptLengths.Where(p => p > 0).Select(p => (p, 0))
                    .Concat(s.GenLengths.Where(n => n > 0).Select(n => (0, n)));
                double? bandwidth = s.GenLengths.Any(n => n > 0) ? MemoryBandwidth.Measure(t) : null;
                foreach (var (np, ng) in tests)
                {
                    var r = RunTest(model, np, ng, t, s.Repetitions, s.BatchSize) with { DecodeBytes = info.DecodeBytes, Bandwidth = bandwidth ?? 0, BatchSize = s.BatchSize };
                    results.Add(r);
                    report(JsonLine(info, r), [info.Type, FormatBytes(info.SizeBytes), FormatCount(info.Parameters), $"{t}", r.Name, TokensPerSecond(r.AvgTs, r.StddevTs),
                        r.NGen > 0 ? $"{r.WeightsGbps:F1}" : "", r.NGen > 0 ? $"{r.BandwidthFraction:P0} of {r.Bandwidth / 1e9:F0}" : ""]);
                }
            }
        });
        return results;
    }

    private static BenchResult RunTest(TransformerModel model, int nPrompt, int nGen, int threads, int repetitions, int batchSize)
    {
        int context = Math.Min(model.MaxContextLength, Math.Max(nPrompt, nGen) + 1);
        using var g = model.CreateGenerator(new GeneratorOptions
        {
            Threads = threads, ContextLength = context, BatchSize = batchSize, Sampling = SamplingOptions.Greedy,
        });
        var rng = new Xoshiro256(1234);
        int vocab = model.Config.VocabSize;
        int[] prompt = new int[Math.Max(nPrompt, 1)];
        var seconds = new double[repetitions];
        for (int rep = -1; rep < repetitions; rep++) // rep -1 warms up
        {
            g.Reset();
            for (int i = 0; i < prompt.Length; i++)
                prompt[i] = (int)(rng.NextUInt64() % (ulong)vocab);
            var clock = Stopwatch.StartNew();
            if (nPrompt > 0)
                g.Prefill(prompt);
            else
            {
                int token = (int)(rng.NextUInt64() % (ulong)vocab);
                for (int i = 0; i < nGen; i++)
                {
                    g.Step(token);
                    token = (int)(rng.NextUInt64() % (ulong)vocab);
                }
            }
            if (rep >= 0)
                seconds[rep] = clock.Elapsed.TotalSeconds;
        }
        return new BenchResult(nPrompt, nGen, threads, seconds);
    }

    private static string JsonLine(ModelSummary info, BenchResult r)
    {
        var ns = r.Seconds.Select(s => (long)(s * 1e9)).ToArray();
        var o = JsonHeader(info, null);
        o["n_batch"] = r.BatchSize;
        o["n_ubatch"] = r.BatchSize;
        o["n_threads"] = r.Threads;
        o["type_k"] = "f16";
        o["type_v"] = "f16";
        o["n_prompt"] = r.NPrompt;
        o["n_gen"] = r.NGen;
        o["test_time"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        o["avg_ns"] = (long)ns.Average();
        o["stddev_ns"] = (long)StdDev(ns.Select(v => (double)v).ToArray());
        o["avg_ts"] = Math.Round(r.AvgTs, 6);
        o["stddev_ts"] = Math.Round(r.StddevTs, 6);
        o["samples_ns"] = ns;
        o["samples_ts"] = r.TokensPerSecond.Select(v => Math.Round(v, 6)).ToArray();
        if (r.NGen > 0)
        {
            o["weights_gbps"] = Math.Round(r.WeightsGbps, 3);
            o["bandwidth_gbps"] = Math.Round(r.Bandwidth / 1e9, 3);
            o["bandwidth_fraction"] = Math.Round(r.BandwidthFraction, 4);
        }
        return JsonSerializer.Serialize(o);
    }

    /// <summary>The fields every JSON line starts with: the engine and the model.</summary>
    internal static Dictionary<string, object> JsonHeader(ModelSummary info, string? mode)
    {
        var o = new Dictionary<string, object> { ["build_commit"] = "managedlm" };
        if (mode is not null)
            o["mode"] = mode;
        o["model_filename"] = info.Path;
        o["model_type"] = info.Type;
        o["model_size"] = info.SizeBytes;
        o["model_n_params"] = info.Parameters;
        return o;
    }

    /// <summary>Throws unless the settings suit a mode that measures decoding: returns the generation lengths to test.</summary>
    internal static int[] DecodeLengths(BenchSettings s, int[] counts, string countOption)
    {
        if (s.Repetitions < 1)
            throw new ArgumentOutOfRangeException(nameof(s), s.Repetitions, "--repetitions must be at least 1.");
        if (counts.Any(n => n < 1))
            throw new ArgumentOutOfRangeException(nameof(counts), $"{countOption} values must be at least 1.");
        if (s.Threads.Any(t => t < 1))
            throw new ArgumentOutOfRangeException(nameof(s), "--threads values must be at least 1.");
        int[] gens = s.GenLengths.Where(n => n > 0).ToArray();
        if (gens.Length == 0)
            throw new ArgumentOutOfRangeException(nameof(s), $"{countOption} measures decoding: --n-gen must have a value above 0.");
        return gens;
    }

    /// <summary>Mean ± standard deviation, in the columns llama-bench prints them in.</summary>
    internal static string TokensPerSecond(double mean, double stddev) => $"{mean,10:F2} ± {stddev,7:F2}";

    internal static double StdDev(double[] v)
    {
        if (v.Length < 2)
            return 0;
        double mean = v.Average();
        return Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Length - 1));
    }

    internal static string FormatBytes(long b) => b >= 1L << 30 ? $"{b / (double)(1L << 30):F2} GiB" : $"{b / (double)(1 << 20):F2} MiB";
    internal static string FormatCount(long n) => n >= 1_000_000_000 ? $"{n / 1e9:F2} B" : n >= 1_000_000 ? $"{n / 1e6:F2} M" : $"{n / 1e3:F2} K";
}
