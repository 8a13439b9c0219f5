using System.Collections.Immutable;
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm bench`, after llama-bench: prompt processing (pp N) and generation (tg N) tokens/s with
/// mean ± stddev over repetitions, after a warm-up run. `--json` prints one llama-bench-style JSON
/// object per test (n_prompt, n_gen, n_threads, avg_ts, stddev_ts, ...). Generation tests also report the weight bytes
/// read per second (a decode step reads every matrix once) and their fraction of the memory bandwidth, which the bench
/// measures itself for each thread count. `-d 2048` measures each test on top of that many tokens of context, as
/// llama-bench's -d does. `--peer PATH/llama-bench` runs llama.cpp's benchmark on the same file and tests, a repetition
/// of it after each of ours, and prints both speeds and their ratio (see <see cref="PeerProgram"/>). `--parallel 1,2,4` measures
/// aggregate decode tokens/s of N independent generators on N threads instead (see <see cref="ParallelBench"/>),
/// `--batch 1,2,4` of B sequences decoded together in one batch (see <see cref="BatchedBench"/>), and `--embed`
/// embeddings/s of batches of --batch texts of -p tokens (see <see cref="EmbedBench"/>).
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var model = CliOptions.Model();
        var prompt = CliOptions.IntList("--n-prompt", "-p", "Prompt lengths to test (tokens, comma-separated; 0 skips).", 128);
        var gen = CliOptions.IntList("--n-gen", "-n", "Generation lengths to test (tokens, comma-separated; 0 skips).", 64);
        var depth = CliOptions.IntList("--n-depth", "-d",
            "Context tokens evaluated before each test (comma-separated), as llama-bench's -d: the test is measured on top of them.", 0);
        depth.Aliases.Add("--depth");
        var threads = CliOptions.IntList("--threads", "-t", "Thread counts to test (comma-separated).", Environment.ProcessorCount);
        var reps = new Option<int>("--repetitions", "-r") { Description = "Runs of each test.", DefaultValueFactory = _ => 5 }.AtLeast(1);
        var json = new Option<bool>("--json") { Description = "Print JSON lines (llama-bench -o jsonl fields) instead of a table." };
        var batched = CliOptions.IntList("--batch", "-B",
            "Sequences decoded together in one batch (comma-separated), after llama.cpp's batched-bench: aggregate tg tokens/s after a -p prompt each.");
        var embed = new Option<bool>("--embed")
        {
            Description = $"Measure embeddings/s instead: batches of --batch texts (default {EmbedBench.DefaultTexts}) of -p tokens each " +
                $"(default {EmbedBench.DefaultTokens}, special tokens included), each batch one pass; with --peer, against llama-embedding.",
        };
        var viaEngine = new Option<bool>("--engine") { Description = "With --batch: run the load through a BatchEngine with B concurrent submitters." };
        var batch = new Option<int>("--ubatch-size", "-ub") { Description = "Prompt tokens per forward pass.", DefaultValueFactory = _ => 64 }.AtLeast(1);
        var parallel = CliOptions.IntList("--parallel", "-np",
            "Independent generators decoding at once, each on its own thread (comma-separated): reports aggregate tg tokens/s and RSS instead of pp/tg.");
        var peer = new Option<string?>("--peer")
        {
            Description = "llama.cpp's llama-bench (with --batch: llama-batched-bench; with --embed: llama-embedding), a path or a name on PATH: runs it on the same file " +
                "and tests, repetitions alternating between the two engines, and prints both speeds and their ratio.",
        };
        var grammar = new Option<string?>("--grammar")
        {
            Description = "Measure what a grammar costs while decoding: 'json' (any JSON object), a .gbnf file or a JSON Schema file; " +
                "each -n test is generated free and constrained, alternating, at temperature 1.",
        };
        var noRepack = new Option<bool>("--no-repack") { Description = "Multiply from the file's layout, without the repacked copies of the weights." };
        var noLargePages = new Option<bool>("--no-large-pages")
        {
            Description = "Read the weights the products do not repack from the file's mapping, not from a copy in 2 MiB pages.",
        };
        var progress = new Option<bool>("--progress") { Description = "Print each run to stderr as it ends (-p/-n tests, --batch and --embed)." };
        var kvType = CliOptions.KvType();
        kvType.Description += " For the -p/-n tests and --parallel.";
        var command = new CliCommand("bench", "Measure prompt-processing and generation speed, like llama-bench.",
        [
            new("Prompt processing of 128 tokens and generation of 64, 5 runs each", "managedlm bench -m model.gguf"),
            new("Several lengths and thread counts, as JSON lines", "managedlm bench -m model.gguf -p 128,512 -n 32,128 -t 1,2,4 -r 3 --json"),
            new("Generation after 2048 tokens of context", "managedlm bench -m model.gguf -p 0 -n 32 -d 2048"),
            new("The same over a Q8_0 KV cache", "managedlm bench -m model.gguf -p 0 -n 32 -d 2048 --kv-type q8_0"),
            new("Side by side with llama.cpp on the same file, runs alternating", "managedlm bench -m model.gguf -p 64 -n 32 -t 1,2 -r 5 --peer ../llama.cpp/build/bin/llama-bench"),
            new("Aggregate generation speed of 1 to 8 sequences decoded in one batch", "managedlm bench -m model.gguf -p 32 -n 64 --batch 1,2,4,8"),
            new("The same against llama-batched-bench", "managedlm bench -m model.gguf -p 32 -n 64 --batch 1,8 --peer ../llama.cpp/build/bin/llama-batched-bench"),
            new("The same load through a BatchEngine with concurrent submitters", "managedlm bench -m model.gguf -n 64 --batch 1,4,16 --engine"),
            new("Independent generators decoding at once, each on its own thread", "managedlm bench -m model.gguf -n 64 --parallel 1,2,4 -t 1"),
            new("Decode speed with and without a JSON grammar", "managedlm bench -m model.gguf -n 64 --grammar json"),
            new("Embeddings/s of batches of 32 texts of 64 tokens on 1 and 2 threads", "managedlm bench -m bge-small.gguf --embed -t 1,2"),
            new("The same against llama-embedding, runs alternating", "managedlm bench -m bge-small.gguf --embed -t 1,2 -r 3 --peer ../llama.cpp/build/bin/llama-embedding"),
        ])
        {
            model, prompt, gen, depth, threads, reps, json, parallel, batched, embed, viaEngine, batch, peer, grammar, noRepack, noLargePages, progress, kvType,
        };
        command.SetAction(parse =>
        {
            // Checked here rather than as the option is parsed, so that the examples parse without a peer at hand.
            var other = parse.GetValue(peer) is { } path ? new PeerProgram(PeerProgram.Locate(path)) : null;
            var settings = new BenchSettings(
                ModelLocator.Resolve(parse.GetValue(model)), parse.GetValue(prompt)!, parse.GetValue(gen)!,
                parse.GetValue(threads)!, parse.GetValue(reps), parse.GetValue(batch)) { Depths = parse.GetValue(depth)!, Repack = !parse.GetValue(noRepack),
                LargePages = !parse.GetValue(noLargePages), KvCacheType = parse.GetValue(kvType) };
            int[] np = parse.GetValue(parallel)!, nb = parse.GetValue(batched)!;
            var (output, log) = (parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error);
            var runs = parse.GetValue(progress) ? log : null;
            if ((nb.Length > 0 || np.Length > 0) && settings.Depths.Any(d => d > 0))
                throw new ArgumentException("-d/--n-depth applies to the -p/-n tests, not to --batch or --parallel.");
            if (other is not null && np.Length > 0)
                throw new ArgumentException("--peer compares the -p/-n tests or --batch, not --parallel.");
            if (settings.KvCacheType != KvCacheType.F16 && (other is not null || nb.Length > 0 || parse.GetValue(grammar) is not null))
                throw new ArgumentException("--kv-type applies to the -p/-n tests and --parallel, not with --peer (llama.cpp's cache stays F16), --batch or --grammar.");
            if (parse.GetValue(embed))
            {
                if (np.Length > 0 || parse.GetValue(viaEngine) || parse.GetValue(grammar) is not null || settings.Depths.Any(d => d > 0)
                    || settings.KvCacheType != KvCacheType.F16 || parse.GetResult(gen) is { Implicit: false })
                    throw new ArgumentException("--embed measures batches of --batch texts of -p tokens: not with -n, -d, --parallel, --engine, --grammar or --kv-type.");
                int[] lengths = parse.GetResult(prompt) is { Implicit: false } ? settings.PromptLengths : [EmbedBench.DefaultTokens];
                EmbedBench.Run(settings, nb.Length > 0 ? nb : [EmbedBench.DefaultTexts], lengths, parse.GetValue(json), output, log, other, runs);
            }
            else if (parse.GetValue(grammar) is { } spec)
            {
                if (other is not null || nb.Length > 0 || np.Length > 0 || settings.Depths.Any(d => d > 0))
                    throw new ArgumentException("--grammar measures -n tests on their own: not with --peer, --batch, --parallel or -d.");
                GrammarBench.Run(settings, GrammarBench.Load(spec), parse.GetValue(json), output, log);
            }
            else if (nb.Length > 0)
                BatchedBench.Run(settings, nb, parse.GetValue(json), output, parse.GetValue(viaEngine), log, other, runs);
            else if (np.Length > 0)
                ParallelBench.Run(settings, np, parse.GetValue(json), output, log);
            else
                Run(settings, parse.GetValue(json), output, log, runs, other);
            return ExitCodes.Ok;
        });
        return command;
    }

    public sealed record BenchSettings(string ModelPath, int[] PromptLengths, int[] GenLengths, int[] Threads, int Repetitions,
        int BatchSize = 64)
    {
        /// <summary>Context tokens evaluated before each -p/-n test.</summary>
        public int[] Depths { get; init; } = [0];

        /// <summary>Whether the model repacks its weights (see <see cref="ModelOptions.RepackWeights"/>).</summary>
        public bool Repack { get; init; } = true;

        /// <summary>Whether the model copies the weights it does not repack into large pages (see <see cref="ModelOptions.LargePages"/>).</summary>
        public bool LargePages { get; init; } = true;

        /// <summary>KV cache storage of the -p/-n tests' and --parallel's generators.</summary>
        public KvCacheType KvCacheType { get; init; } = KvCacheType.F16;

        /// <summary>
        /// Loads the model as these settings say, not warmed up (each mode warms up what it measures), and logs the memory
        /// of the weights' copies.
        /// </summary>
        public TransformerModel LoadModel(TextWriter? log, int? maxContextLength = null)
        {
            var model = ModelLoading.Load(ModelPath, log, maxContextLength, warmUp: false, repack: Repack, largePages: LargePages);
            var w = model.Weights;
            if (w.RepackedBytes > 0 || w.LargePageBytes > 0)
                log?.WriteLine($"repacked {w.RepackedBytes / (1024.0 * 1024):F0} MiB of weights, copied {w.LargePageBytes / (1024.0 * 1024):F0} MiB " +
                    $"into large pages; RSS {Environment.WorkingSet / (1024.0 * 1024 * 1024):F2} GiB");
            return model;
        }

        /// <summary>The -p/-n tests in the order they run for each thread count: by depth, prompts first.</summary>
        public IEnumerable<BenchTest> Tests =>
            from d in Depths.Distinct()
            from test in PromptLengths.Where(p => p > 0).Select(p => new BenchTest(p, 0, d))
                .Concat(GenLengths.Where(n => n > 0).Select(n => new BenchTest(0, n, d)))
            select test;

        /// <summary>Throws unless the repetitions and threads are valid; returns the context the longest test needs.</summary>
        public int CheckTests()
        {
            if (Repetitions < 1)
                throw new ArgumentOutOfRangeException(nameof(Repetitions), Repetitions, "--repetitions must be at least 1.");
            if (Threads.Any(t => t < 1))
                throw new ArgumentOutOfRangeException(nameof(Threads), "--threads values must be at least 1.");
            return Tests.Select(t => t.Context).DefaultIfEmpty(1).Max();
        }
    }

    /// <summary>One -p/-n test as llama-bench runs it: a prompt of NPrompt tokens or NGen generated tokens, after Depth tokens of context.</summary>
    public readonly record struct BenchTest(int NPrompt, int NGen, int Depth)
    {
        public int Tokens => NPrompt + NGen;
        /// <summary>The context the test fills, and one more.</summary>
        public int Context => Depth + Math.Max(NPrompt, NGen) + 1;
        /// <summary>llama-bench's name of the test: "pp512", "tg128 @ d2048".</summary>
        public string Name => (NPrompt > 0 ? $"pp{NPrompt}" : $"tg{NGen}") + (Depth > 0 ? $" @ d{Depth}" : "");
    }

    /// <summary>
    /// One test's result: tokens/s of each repetition; for generation, weight bytes per token and the memory bandwidth;
    /// with a peer, its seconds for each repetition (run right after ours).
    /// </summary>
    public sealed record BenchResult(BenchTest Test, int Threads, double[] Seconds)
    {
        public int NPrompt => Test.NPrompt;
        public int NGen => Test.NGen;
        public long DecodeBytes { get; init; }
        /// <summary>Prompt tokens per forward pass.</summary>
        public int BatchSize { get; init; } = 64;
        /// <summary>KV cache storage.</summary>
        public KvCacheType KvCacheType { get; init; } = KvCacheType.F16;
        /// <summary>Measured read bandwidth with this many threads, bytes/s (0 when not measured).</summary>
        public double Bandwidth { get; init; }
        /// <summary>Weight bytes read per second while generating, in GB/s.</summary>
        public double WeightsGbps => DecodeBytes * AvgTs / 1e9;
        public double BandwidthFraction => Bandwidth > 0 ? DecodeBytes * AvgTs / Bandwidth : 0;
        public double[] TokensPerSecond => Seconds.Select(s => Test.Tokens / s).ToArray();
        public double AvgTs => TokensPerSecond.Average();
        public double StddevTs => StdDev(TokensPerSecond);
        public string Name => Test.Name;
        /// <summary>The peer's seconds for each repetition; empty without a peer.</summary>
        public double[] PeerSeconds { get; init; } = [];
        /// <summary>The peer's build, as llama-bench reports it: "b6123 (1a2b3c4)".</summary>
        public string PeerBuild { get; init; } = "";
        public double[] PeerTokensPerSecond => PeerSeconds.Select(s => Test.Tokens / s).ToArray();
        public SpeedRatio Ratio => SpeedRatio.Of(TokensPerSecond, PeerTokensPerSecond);
    }

    private static readonly ImmutableArray<BenchColumn> Columns =
    [
        new("model", 32, Left: true), new("size", 10), new("params", 10), new("threads", 7), new("test", 14), new("t/s", 20),
        new("weights GB/s", 12), new("of bandwidth", 16),
    ];

    private static readonly ImmutableArray<BenchColumn> PeerColumns =
    [
        new("model", 32, Left: true), new("threads", 7), new("test", 14), new("ours t/s", 20), new("peer t/s", 20), new("ours/peer", 12),
    ];

    /// <summary>
    /// Runs the tests, printing a table row or a JSON line for each; <paramref name="log"/> shows the model loading,
    /// <paramref name="progress"/> gets a line per run. With a <paramref name="peer"/> (llama-bench), each repetition of
    /// ours is followed by one of the peer's on the same file, and the rows compare the two.
    /// </summary>
    public static IReadOnlyList<BenchResult> Run(BenchSettings s, bool json, TextWriter output, TextWriter? log = null, TextWriter? progress = null,
        PeerProgram? peer = null)
    {
        int context = s.CheckTests();
        using var model = s.LoadModel(log, context);
        var info = ModelSummary.Of(model, s.ModelPath);
        string file = Path.GetFullPath(s.ModelPath);
        var results = new List<BenchResult>();
        BenchTable.Run(output, json, peer is null ? Columns : PeerColumns, report =>
        {
            foreach (int t in s.Threads)
            {
                double? bandwidth = peer is null && s.GenLengths.Any(n => n > 0) ? MemoryBandwidth.Measure(t) : null;
                foreach (var test in s.Tests)
                {
                    using var run = new BenchRun(model, test, t, s.BatchSize, s.KvCacheType);
                    var seconds = new double[s.Repetitions];
                    var peerSeconds = new double[peer is null ? 0 : s.Repetitions];
                    string build = "";
                    for (int rep = 0; rep < seconds.Length; rep++)
                    {
                        // After the peer's process, a warm-up of ours as each llama-bench -r 1 run warms up before it times.
                        if (peer is not null && rep > 0)
                            run.Measure();
                        seconds[rep] = run.Measure();
                        progress?.WriteLine(run.Describe("managedlm", rep, seconds));
                        if (peer is null)
                            continue;
                        (peerSeconds[rep], build) = peer.RunLlamaBench(file, test, t);
                        progress?.WriteLine(run.Describe(peer.Name, rep, peerSeconds));
                    }
                    var r = new BenchResult(test, t, seconds)
                    {
                        DecodeBytes = info.DecodeBytes, Bandwidth = bandwidth ?? 0, BatchSize = s.BatchSize, PeerSeconds = peerSeconds, PeerBuild = build,
                        KvCacheType = s.KvCacheType,
                    };
                    results.Add(r);
                    report(JsonLine(info, r, peer), peer is not null
                        ? [info.Type, $"{t}", r.Name, TokensPerSecond(r.AvgTs, r.StddevTs), TokensPerSecond(r.PeerTokensPerSecond.Average(), StdDev(r.PeerTokensPerSecond)), $"{r.Ratio}"]
                        : [info.Type, FormatBytes(info.SizeBytes), FormatCount(info.Parameters), $"{t}", r.Name, TokensPerSecond(r.AvgTs, r.StddevTs),
                            r.NGen > 0 ? $"{r.WeightsGbps:F1}" : "", r.NGen > 0 ? $"{r.BandwidthFraction:P0} of {r.Bandwidth / 1e9:F0}" : ""]);
                }
            }
        });
        if (peer is not null && !json && results.Count > 0)
            output.WriteLine($"peer: {peer.Path}, build {results[^1].PeerBuild}");
        return results;
    }

    /// <summary>
    /// One test on one thread count with its generator, measured a repetition at a time (so that another engine's runs can
    /// come in between): the context of <see cref="BenchTest.Depth"/> random tokens is evaluated once, and each repetition
    /// trims back to it. A warm-up repetition runs at construction.
    /// </summary>
    internal sealed class BenchRun : IDisposable
    {
        private readonly Generator _generator;
        private readonly BenchTest _test;
        private readonly int _threads;
        private readonly int[] _prompt;
        private readonly Xoshiro256 _rng = new(1234);
        private readonly int _vocab;

        public BenchRun(TransformerModel model, BenchTest test, int threads, int batchSize, KvCacheType kvCacheType = KvCacheType.F16)
        {
            (_test, _threads, _vocab) = (test, threads, model.Config.VocabSize);
            _generator = model.CreateGenerator(new GeneratorOptions
            {
                Threads = threads, ContextLength = Math.Min(model.MaxContextLength, test.Context), BatchSize = batchSize, KvCacheType = kvCacheType,
                Sampling = SamplingOptions.Greedy,
            });
            _prompt = new int[Math.Max(test.NPrompt, test.Depth)];
            if (test.Depth > 0)
                _generator.Prefill(RandomTokens(test.Depth));
            Measure();
        }

        /// <summary>Seconds one repetition takes: the prompt's evaluation, or generating the tokens one at a time.</summary>
        public double Measure()
        {
            _generator.Trim(_test.Depth);
            var prompt = RandomTokens(_test.NPrompt);
            var clock = Stopwatch.StartNew();
            if (_test.NPrompt > 0)
                _generator.Prefill(prompt);
            for (int i = 0; i < _test.NGen; i++)
                _generator.Step(RandomToken());
            return clock.Elapsed.TotalSeconds;
        }

        /// <summary>A progress line: "managedlm tg32 -t 2: run 1/5: 123.45 t/s".</summary>
        public string Describe(string engine, int rep, double[] seconds) =>
            $"{engine} {_test.Name} -t {_threads}: run {rep + 1}/{seconds.Length}: {_test.Tokens / seconds[rep]:F2} t/s";

        public void Dispose() => _generator.Dispose();

        private ReadOnlySpan<int> RandomTokens(int count)
        {
            for (int i = 0; i < count; i++)
                _prompt[i] = RandomToken();
            return _prompt.AsSpan(0, count);
        }

        private int RandomToken() => (int)(_rng.NextUInt64() % (ulong)_vocab);
    }

    private static string JsonLine(ModelSummary info, BenchResult r, PeerProgram? peer)
    {
        var ns = r.Seconds.Select(s => (long)(s * 1e9)).ToArray();
        var o = JsonHeader(info, null);
        o["n_batch"] = r.BatchSize;
        o["n_ubatch"] = r.BatchSize;
        o["n_threads"] = r.Threads;
        o["type_k"] = CliOptions.KvTypeName(r.KvCacheType);
        o["type_v"] = CliOptions.KvTypeName(r.KvCacheType);
        o["n_prompt"] = r.NPrompt;
        o["n_gen"] = r.NGen;
        o["n_depth"] = r.Test.Depth;
        o["test_time"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ");
        o["avg_ns"] = (long)ns.Average();
        o["stddev_ns"] = (long)StdDev(ns.Select(v => (double)v).ToArray());
        o["avg_ts"] = Math.Round(r.AvgTs, 6);
        o["stddev_ts"] = Math.Round(r.StddevTs, 6);
        o["samples_ns"] = ns;
        o["samples_ts"] = r.TokensPerSecond.Select(v => Math.Round(v, 6)).ToArray();
        if (peer is not null)
        {
            var ts = r.PeerTokensPerSecond;
            o["peer"] = peer.Path;
            o["peer_build"] = r.PeerBuild;
            o["peer_avg_ts"] = Math.Round(ts.Average(), 6);
            o["peer_stddev_ts"] = Math.Round(StdDev(ts), 6);
            o["peer_samples_ts"] = ts.Select(v => Math.Round(v, 6)).ToArray();
            o["ratio"] = Math.Round(r.Ratio.Value, 4);
            o["ratio_stddev"] = Math.Round(r.Ratio.Stddev, 4);
        }
        else if (r.NGen > 0)
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
        o["kernels"] = Kernels.CpuFeatures.Level.ToString().ToLowerInvariant();
        o["model_filename"] = info.Path;
        o["model_type"] = info.Type;
        o["model_size"] = info.SizeBytes;
        o["model_n_params"] = info.Parameters;
        return o;
    }

    /// <summary>Throws unless the settings suit a mode that measures decoding: returns the generation lengths to test.</summary>
    internal static int[] DecodeLengths(BenchSettings s, int[] counts, string countOption)
    {
        s.CheckTests();
        if (counts.Any(n => n < 1))
            throw new ArgumentOutOfRangeException(nameof(counts), $"{countOption} values must be at least 1.");
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
