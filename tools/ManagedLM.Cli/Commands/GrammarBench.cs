using System.Collections.Immutable;
using System.Text.Json;
using ManagedLM.Generation;
using ManagedLM.Grammars;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Cli.Commands;

/// <summary>
/// `managedlm bench --grammar json|FILE.gbnf|SCHEMA.json`: what a grammar costs while decoding. Each repetition
/// generates -n tokens sampled at temperature 1 twice, free and then constrained by the grammar (the same seed, the
/// runs alternating), and reports both decode speeds and the constrained run's cost: 1 − constrained ÷ free tokens/s.
/// A constrained run that the grammar ends early counts the tokens it made.
/// </summary>
internal static class GrammarBench
{
    /// <summary>One (threads, n_gen) test: decode tokens/s of each repetition, free and constrained.</summary>
    public sealed record GrammarResult(int Threads, int NGen, double[] Free, double[] Constrained, double TokensFraction)
    {
        /// <summary>Fraction of free decode speed the grammar costs (0.05: constrained decoding is 5 % slower).</summary>
        public double Cost => 1 - Constrained.Average() / Free.Average();
    }

    private static readonly ImmutableArray<BenchColumn> Columns =
    [
        new("model", 32, Left: true), new("threads", 7), new("test", 6), new("free t/s", 20), new("grammar t/s", 20), new("cost", 8),
    ];

    /// <summary>The grammar a --grammar value names: "json" (any JSON object), a .gbnf file, or a JSON Schema file.</summary>
    public static Grammar Load(string spec)
    {
        if (spec == "json")
            return Grammar.JsonObject;
        string text = File.ReadAllText(spec);
        return spec.EndsWith(".gbnf", StringComparison.OrdinalIgnoreCase) ? Grammar.FromGbnf(text) : Grammar.FromJsonSchema(text);
    }

    public static IReadOnlyList<GrammarResult> Run(BenchCommand.BenchSettings s, Grammar grammar, bool json, TextWriter output, TextWriter? log = null)
    {
        int[] gens = BenchCommand.DecodeLengths(s, [1], "--grammar");
        int prompt = Math.Max(1, s.PromptLengths.Where(p => p > 0).DefaultIfEmpty(8).First());
        using var model = s.LoadModel(log, prompt + gens.Max() + 1);
        var info = ModelSummary.Of(model, s.ModelPath);
        var results = new List<GrammarResult>();
        int[] promptTokens = [.. Enumerable.Range(0, prompt).Select(i => (i * 7919 + 13) % model.Config.VocabSize)];
        BenchTable.Run(output, json, Columns, report =>
        {
            foreach (int t in s.Threads)
            {
                using var generator = model.CreateGenerator(new GeneratorOptions { Threads = t, ContextLength = prompt + gens.Max() + 1 });
                foreach (int n in gens)
                {
                    var free = new double[s.Repetitions];
                    var constrained = new double[s.Repetitions];
                    var options = new GenerationOptions { MaxTokens = n, IgnoreEndOfGeneration = true, ReusePrefix = false };
                    double decoded = 0, total = 0;
                    for (int rep = -1; rep < s.Repetitions; rep++)
                    {
                        var sampling = new SamplingOptions { Temperature = 1, TopK = 0, TopP = 1, MinP = 0, Seed = (ulong)(rep + 2) };
                        var a = generator.Complete(promptTokens, options with { Sampling = sampling });
                        var b = generator.Complete(promptTokens, options with { Sampling = sampling, Grammar = grammar });
                        if (rep < 0)
                            continue;                    // warm-up
                        free[rep] = Speed(a);
                        constrained[rep] = Speed(b);
                        decoded += b.GeneratedTokens.Length;
                        total += n;
                    }
                    var r = new GrammarResult(t, n, free, constrained, decoded / total);
                    results.Add(r);
                    var o = BenchCommand.JsonHeader(info, "grammar");
                    o["n_threads"] = t;
                    o["n_gen"] = n;
                    o["free_avg_ts"] = Math.Round(free.Average(), 4);
                    o["grammar_avg_ts"] = Math.Round(constrained.Average(), 4);
                    o["grammar_tokens_fraction"] = Math.Round(r.TokensFraction, 4);
                    o["cost"] = Math.Round(r.Cost, 4);
                    report(JsonSerializer.Serialize(o),
                        [info.Type, $"{t}", $"tg{n}", BenchCommand.TokensPerSecond(free.Average(), BenchCommand.StdDev(free)),
                            BenchCommand.TokensPerSecond(constrained.Average(), BenchCommand.StdDev(constrained)), $"{r.Cost:P1}"]);
                }
            }
        });
        return results;
    }

    // Decode tokens/s of a run: tokens after the first (which comes from the prompt's evaluation) over the decode time.
    private static double Speed(GenerationResult r) =>
        r.DecodeTime.TotalSeconds > 0 ? Math.Max(0, r.GeneratedTokens.Length - 1) / r.DecodeTime.TotalSeconds : 0;
}
