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
/// With a peer (llama-batched-bench), each repetition of ours is followed by one of the peer's (the same B, prompt,
/// generation length and threads) and the rows compare the aggregate tg and pp speeds.
/// </summary>
internal static class BatchedBench
{
    /// <summary>One batch size: decode seconds per repetition, and the prompt phase (all B prompts) of each.</summary>
    public sealed record BatchedResult(int Sequences, int Threads, int NPrompt, int NGen, double[] Seconds, double[] PromptSeconds, bool Engine)
    {
        /// <summary>The peer's speed_pp of each repetition (all sequences' prompt tokens/s); empty without a peer.</summary>
        public double[] PeerSpeedPp { get; init; } = [];
        /// <summary>The peer's speed_tg of each repetition (aggregate decode tokens/s).</summary>
        public double[] PeerSpeedTg { get; init; } = [];
        public SpeedRatio RatioTg => SpeedRatio.Of(TokensPerSecond, PeerSpeedTg);
        public SpeedRatio RatioPp => SpeedRatio.Of(PromptSeconds.Select(s => Sequences * NPrompt / s).ToArray(), PeerSpeedPp);
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

    private static readonly ImmutableArray<BenchColumn> PeerColumns =
    [
        new("model", 32, Left: true), new("threads", 7), new("B", 4), new("test", 10), new("ours tg t/s", 20), new("peer tg t/s", 20),
        new("tg ours/peer", 12), new("ours pp t/s", 11), new("peer pp t/s", 11), new("pp ours/peer", 12),
    ];

    /// <summary>
    /// Runs each batch size for each thread count and generation length, printing a row or a JSON line for each;
    /// <paramref name="progress"/> gets a line per run. With a <paramref name="peer"/>, the rows compare with it.
    /// </summary>
    public static IReadOnlyList<BatchedResult> Run(BenchCommand.BenchSettings s, int[] batches, bool json, TextWriter output, bool engine = false,
        TextWriter? log = null, PeerProgram? peer = null, TextWriter? progress = null)
    {
        int[] gens = BenchCommand.DecodeLengths(s, batches, "--batch");
        int prompt = s.PromptLengths.FirstOrDefault(p => p > 0, 32);

        using var model = s.LoadModel(log);
        var info = ModelSummary.Of(model, s.ModelPath);
        string file = Path.GetFullPath(s.ModelPath);
        var results = new List<BatchedResult>();
        BenchTable.Run(output, json, peer is null ? Columns : PeerColumns, report =>
        {
            foreach (int t in s.Threads)
            {
                using var decoder = new BatchDecoder(model, t);
                foreach (int ng in gens)
                {
                    double? single = null;
                    foreach (int b in batches)
                    {
                        var (peerPp, peerTg) = (new double[peer is null ? 0 : s.Repetitions], new double[peer is null ? 0 : s.Repetitions]);
                        // After each repetition of ours: its progress line, then the peer's repetition.
                        void AfterRepetition(int rep, double promptSeconds, double seconds)
                        {
                            string test = $"B={b} pp{prompt}+tg{ng} -t {t}: run {rep + 1}/{s.Repetitions}:";
                            progress?.WriteLine($"managedlm {test} tg {b * ng / seconds:F2} t/s, pp {b * prompt / promptSeconds:F2} t/s");
                            if (peer is null)
                                return;
                            (peerPp[rep], peerTg[rep]) = peer.RunBatchedBench(file, prompt, ng, b, t);
                            progress?.WriteLine($"{peer.Name} {test} tg {peerTg[rep]:F2} t/s, pp {peerPp[rep]:F2} t/s");
                        }
                        var r = (engine ? RunEngine(model, t, b, prompt, ng, s.Repetitions, AfterRepetition) : RunTest(model, decoder, b, prompt, ng, s.Repetitions, AfterRepetition))
                            with { PeerSpeedPp = peerPp, PeerSpeedTg = peerTg };
                        results.Add(r);
                        if (b == 1)
                            single = r.AvgTs;
                        string name = $"pp{prompt}+tg{ng}";
                        report(JsonLine(info, r, peer), peer is not null
                            ? [info.Type, $"{t}", $"{b}", name, BenchCommand.TokensPerSecond(r.AvgTs, r.StddevTs),
                                BenchCommand.TokensPerSecond(peerTg.Average(), BenchCommand.StdDev(peerTg)), $"{r.RatioTg}", $"{r.PromptTs:F1}", $"{peerPp.Average():F1}", $"{r.RatioPp}"]
                            : [info.Type, $"{t}", $"{b}", name, BenchCommand.TokensPerSecond(r.AvgTs, r.StddevTs),
                                single is { } one ? $"{r.AvgTs / one:F2}x" : "", $"{r.PerStreamTs:F2}", $"{r.PromptTs:F1}", $"{r.TimeToFirstToken * 1000,8:F1} ms"]);
                    }
                }
            }
        });
        if (peer is not null && !json && results.Count > 0)
            output.WriteLine($"peer: {peer.Path}");
        return results;
    }

    // Reports each measured repetition (not the warm-up): its index, prompt seconds and decode seconds.
    private delegate void RepetitionDone(int rep, double promptSeconds, double seconds);

    private static BatchedResult RunTest(TransformerModel model, BatchDecoder decoder, int sequences, int prompt, int nGen, int repetitions, RepetitionDone repeated)
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
                {
                    seconds[rep] = clock.Elapsed.TotalSeconds;
                    repeated(rep, promptSeconds[rep], seconds[rep]);
                }
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
    private static BatchedResult RunEngine(TransformerModel model, int threads, int sequences, int prompt, int nGen, int repetitions, RepetitionDone repeated)
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
                repeated(rep, promptSeconds[rep], seconds[rep]);
            }
        }
        return new BatchedResult(sequences, threads, prompt, nGen, seconds, promptSeconds, Engine: true);
    }

    private static string JsonLine(ModelSummary info, BatchedResult r, PeerProgram? peer)
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
        if (peer is not null)
        {
            o["peer"] = peer.Path;
            o["peer_speed_pp"] = Math.Round(r.PeerSpeedPp.Average(), 6);
            o["peer_speed_tg"] = Math.Round(r.PeerSpeedTg.Average(), 6);
            o["peer_stddev_tg"] = Math.Round(BenchCommand.StdDev(r.PeerSpeedTg), 6);
            o["peer_samples_ts"] = r.PeerSpeedTg.Select(v => Math.Round(v, 6)).ToArray();
            o["ratio_tg"] = Math.Round(r.RatioTg.Value, 4);
            o["ratio_tg_stddev"] = Math.Round(r.RatioTg.Stddev, 4);
            o["ratio_pp"] = Math.Round(r.RatioPp.Value, 4);
            o["ratio_pp_stddev"] = Math.Round(r.RatioPp.Stddev, 4);
        }
        return JsonSerializer.Serialize(o);
    }
}
