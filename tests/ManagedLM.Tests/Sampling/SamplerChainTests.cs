using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Sampling;

public class SamplerChainTests
{
    private static readonly float[] Logits = [1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f];

    // Only the stage under test: no top-k, top-p or min-p.
    private static readonly SamplingOptions Unfiltered = new() { Temperature = 1f, TopK = 0, TopP = 1, MinP = 0, Seed = 5 };

    // Logits whose softmax is exactly `probabilities`.
    private static float[] LogitsOf(params double[] probabilities) => [.. probabilities.Select(p => (float)Math.Log(p))];

    // The ids drawn in `draws` samples: the support the filters keep (temperature does not change it).
    private static SortedSet<int> Support(SamplingOptions options, float[] logits, int[]? history = null, int draws = 3000)
    {
        var s = new SamplerChain(options, logits.Length);
        var seen = new SortedSet<int>();
        for (int i = 0; i < draws; i++)
            seen.Add(s.Sample(logits, history));
        return seen;
    }

    private static int Greedy(SamplingOptions options, float[] logits, int[] history) =>
        new SamplerChain(options with { Temperature = 0 }, logits.Length).Sample(logits, history);

    [Fact]
    public void Greedy_takes_the_argmax_and_ties_go_to_the_lower_id()
    {
        var s = new SamplerChain(SamplingOptions.Greedy, Logits.Length);
        Assert.Equal(1, s.Sample(Logits));
        Assert.Equal(1, SamplerChain.ArgMax(Logits));
    }

    [Theory]
    [InlineData(1, 1f, 0f)]      // top-k 1
    [InlineData(0, 0.01f, 0f)]   // top-p keeps only the first token
    [InlineData(0, 1f, 1f)]      // min-p 1 keeps only the most likely (two tie at 3.0: lower id is not forced)
    public void Filters_that_keep_one_token_make_sampling_deterministic(int topK, float topP, float minP)
    {
        var s = new SamplerChain(new SamplingOptions { Temperature = 1.5f, TopK = topK, TopP = topP, MinP = minP, Seed = 1 }, Logits.Length);
        for (int i = 0; i < 100; i++)
        {
            int id = s.Sample(Logits);
            if (minP == 1f)
                Assert.Contains(id, new[] { 1, 3 });
            else
                Assert.Equal(1, id);
        }
    }

    [Fact]
    public void Top_k_keeps_only_the_k_most_likely()
    {
        var s = new SamplerChain(new SamplingOptions { Temperature = 5f, TopK = 3, TopP = 1, MinP = 0, Seed = 3 }, Logits.Length);
        var seen = new HashSet<int>();
        for (int i = 0; i < 2000; i++)
            seen.Add(s.Sample(Logits));
        Assert.Equal(new HashSet<int> { 1, 2, 3 }, seen);
    }

    [Fact]
    public void Unfiltered_draws_follow_the_softmax()
    {
        var s = new SamplerChain(Unfiltered with { Seed = 11 }, Logits.Length);
        const int draws = 200_000;
        var counts = new int[Logits.Length];
        for (int i = 0; i < draws; i++)
            counts[s.Sample(Logits)]++;
        double z = Logits.Sum(l => Math.Exp(l));
        for (int i = 0; i < Logits.Length; i++)
            Assert.InRange(counts[i] / (double)draws, Math.Exp(Logits[i]) / z - 0.005, Math.Exp(Logits[i]) / z + 0.005);
    }

    [Fact]
    public void Draws_follow_the_softmax_of_the_kept_logits_divided_by_the_temperature()
    {
        // Top-k 3 keeps ids 1, 3 (3.0) and 2 (2.0); temperature 0.5 doubles the logits: weights e^6, e^6, e^4.
        var s = new SamplerChain(new SamplingOptions { Temperature = 0.5f, TopK = 3, TopP = 1, MinP = 0, Seed = 21 }, Logits.Length);
        const int draws = 100_000;
        var counts = new int[Logits.Length];
        for (int i = 0; i < draws; i++)
            counts[s.Sample(Logits)]++;
        double z = 2 * Math.Exp(6) + Math.Exp(4);
        Assert.InRange(counts[1] / (double)draws, Math.Exp(6) / z - 0.006, Math.Exp(6) / z + 0.006);
        Assert.InRange(counts[3] / (double)draws, Math.Exp(6) / z - 0.006, Math.Exp(6) / z + 0.006);
        Assert.InRange(counts[2] / (double)draws, Math.Exp(4) / z - 0.006, Math.Exp(4) / z + 0.006);
        Assert.Equal(draws, counts[1] + counts[2] + counts[3]);
    }

    [Fact]
    public void A_tiny_temperature_draws_the_most_likely_token_without_overflow()
    {
        var s = new SamplerChain(Unfiltered with { Temperature = 1e-30f, Seed = 4 }, 4);
        float[] logits = [1f, 3f, 2.9999f, float.NegativeInfinity];
        for (int i = 0; i < 50; i++)
            Assert.Equal(1, s.Sample(logits));
    }

    [Theory]
    [InlineData(2f, 0.99f, 0)]    // seen 2 → 1 (halved), still above 0.99
    [InlineData(2f, 1.01f, 1)]    // ... and below 1.01
    [InlineData(-1f, -1.99f, 1)]  // seen -1 → -2 (doubled), below -1.99
    [InlineData(-1f, -2.01f, 0)]  // ... and above -2.01
    public void Repeat_penalty_2_halves_a_positive_logit_and_doubles_a_negative_one_of_a_seen_token(float seen, float other, int expected)
    {
        var options = Unfiltered with { RepeatPenalty = 2f };
        Assert.Equal(0, Greedy(options, [seen, other], []));
        Assert.Equal(expected, Greedy(options, [seen, other], [0]));
    }

    [Theory]
    [InlineData(3, 2.49f, 0)]   // 5 − 3·0.5 − 1 = 2.5
    [InlineData(3, 2.51f, 1)]
    [InlineData(1, 3.49f, 0)]   // 5 − 1·0.5 − 1 = 3.5: presence counts once
    [InlineData(1, 3.51f, 1)]
    public void Frequency_penalty_counts_every_occurrence_and_presence_penalty_one(int occurrences, float other, int expected)
    {
        var options = Unfiltered with { FrequencyPenalty = 0.5f, PresencePenalty = 1f };
        int[] history = [.. Enumerable.Repeat(0, occurrences), 1];   // token 1 is penalized too, from a low base
        Assert.Equal(expected, Greedy(options, [5f, other + 1.5f], history));
    }

    [Theory]
    [InlineData(0.99f, 0)]   // 6 / 2 − 2·0.5 − 1 = 1.0
    [InlineData(1.01f, 1)]
    public void Repeat_penalty_divides_before_frequency_and_presence_subtract(float other, int expected)
    {
        var options = Unfiltered with { RepeatPenalty = 2f, FrequencyPenalty = 0.5f, PresencePenalty = 1f };
        Assert.Equal(expected, Greedy(options, [6f, other], [0, 0]));
    }

    [Theory]
    [InlineData(0, 0)]     // off
    [InlineData(1, 1)]     // window [0]
    [InlineData(2, 2)]     // window [1, 0]
    [InlineData(3, 3)]
    [InlineData(4, 4)]
    [InlineData(-1, 4)]    // the whole history
    [InlineData(64, 4)]    // longer than the history
    public void Penalties_look_at_the_last_n_tokens_of_the_history(int lastN, int expected)
    {
        var options = Unfiltered with { PresencePenalty = 10f, RepeatLastN = lastN };
        Assert.Equal(expected, Greedy(options, [4f, 3f, 2f, 1f, 0f], [3, 2, 1, 0]));
    }

    [Fact]
    public void Penalties_apply_on_every_call_and_leave_no_counts_behind()
    {
        var s = new SamplerChain(Unfiltered with { Temperature = 0, FrequencyPenalty = 1f }, 3);
        float[] logits = [3f, 2.5f, 1f];
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(1, s.Sample(logits, [0]));    // 3 − 1 = 2 < 2.5
            Assert.Equal(0, s.Sample(logits, [2]));
            Assert.Equal(0, s.Sample(logits));
        }
    }

    [Fact]
    public void Logit_bias_adds_to_the_logit_and_minus_infinity_bans_the_token_even_when_greedy()
    {
        float[] logits = [1f, 5f, 2f, 4.5f];
        var ban = new Dictionary<int, float> { [1] = float.NegativeInfinity };
        Assert.Equal(3, Greedy(Unfiltered with { LogitBias = ban }, logits, []));
        Assert.Equal(2, Greedy(Unfiltered with { LogitBias = new Dictionary<int, float> { [1] = -4f, [2] = 2.6f } }, logits, []));
        Assert.Equal(new SortedSet<int> { 0, 2, 3 }, Support(Unfiltered with { Temperature = 50, LogitBias = ban }, logits));
    }

    [Fact]
    public void Logit_bias_comes_before_top_k()
    {
        // Without the bias top-k 1 keeps id 1; the bias makes id 0 the most likely.
        var options = Unfiltered with { TopK = 1, LogitBias = new Dictionary<int, float> { [0] = 10f } };
        Assert.Equal(new SortedSet<int> { 0 }, Support(options, [1f, 5f, 2f], draws: 200));
    }

    [Fact]
    public void Banning_every_token_throws()
    {
        var all = new Dictionary<int, float> { [0] = float.NegativeInfinity, [1] = float.NegativeInfinity };
        Assert.Throws<InvalidOperationException>(() => new SamplerChain(Unfiltered with { LogitBias = all }, 2).Sample([1f, 2f]));
        Assert.Throws<InvalidOperationException>(() => new SamplerChain(SamplingOptions.Greedy with { LogitBias = all }, 2).Sample([1f, 2f]));
    }

    [Theory]
    [InlineData(0.1f, new[] { 1 })]
    [InlineData(0.3f, new[] { 1, 2 })]          // locally typical: the most likely token (id 0) is not typical
    [InlineData(0.5f, new[] { 0, 1, 2 })]
    [InlineData(0.9f, new[] { 0, 1, 2, 3 })]
    [InlineData(1.0f, new[] { 0, 1, 2, 3, 4 })] // off
    public void Typical_p_keeps_the_tokens_whose_surprise_is_closest_to_the_entropy(float typicalP, int[] expected)
    {
        // p = .5 .2 .15 .1 .05: entropy H = 1.333 nats; |−ln p − H| = .640 .276 .564 .970 1.663,
        // so the ranking is ids 1 (.2), 2 (.15), 0 (.5), 3 (.1), 4 (.05): cumulative .2 .35 .85 .95 1.
        var logits = LogitsOf(0.5, 0.2, 0.15, 0.1, 0.05);
        Assert.Equal(new SortedSet<int>(expected), Support(Unfiltered with { Temperature = 50, TypicalP = typicalP }, logits));
    }

    [Fact]
    public void Top_p_renormalizes_over_what_top_k_kept()
    {
        // p = .4 .3 .2 .1. Top-k 2 leaves .571 .429, and top-p .5 then keeps only id 0
        // (top-p first would keep ids 0 and 1: .4 < .5 ≤ .7).
        var logits = LogitsOf(0.4, 0.3, 0.2, 0.1);
        Assert.Equal(new SortedSet<int> { 0 }, Support(Unfiltered with { TopK = 2, TopP = 0.5f }, logits, draws: 500));
        Assert.Equal(new SortedSet<int> { 0, 1 }, Support(Unfiltered with { TopP = 0.5f }, logits));
    }

    [Fact]
    public void Min_p_filters_what_top_p_kept()
    {
        // p = .4 .3 .2 .1. Top-p .5 keeps ids 0 and 1; min-p .6 (p ≥ .24) keeps both.
        // In the other order min-p would leave .571 .429 and top-p .5 only id 0.
        var logits = LogitsOf(0.4, 0.3, 0.2, 0.1);
        Assert.Equal(new SortedSet<int> { 0, 1 }, Support(Unfiltered with { TopP = 0.5f, MinP = 0.6f, Temperature = 50 }, logits));
        Assert.Equal(new SortedSet<int> { 0, 1, 2 }, Support(Unfiltered with { TopK = 3, MinP = 0.45f, Temperature = 50 }, logits));
    }

    [Fact]
    public void Temperature_applies_after_the_filters()
    {
        // Top-p .35 on p = .4 .3 .2 .1 keeps only id 0; at temperature 100 first, the nearly uniform distribution would keep two.
        var logits = LogitsOf(0.4, 0.3, 0.2, 0.1);
        Assert.Equal(new SortedSet<int> { 0 }, Support(Unfiltered with { TopP = 0.35f, Temperature = 100 }, logits, draws: 500));
    }

    /// <summary>FsCheck's generator for the top-p property: up to 60 logits in [-10, 10] and a p in (0, 1].</summary>
    public static class TopPCases
    {
        public static Arbitrary<(float[] Logits, float P)> Cases() =>
            (from n in Gen.Choose(1, 60)
             from logits in Gen.ArrayOf(Gen.Choose(-400, 400).Select(x => x / 40f), n)
             from p in Gen.Choose(1, 100).Select(x => x / 100f)
             select (logits, p)).ToArbitrary();
    }

    // A fixed seed: the same 100 cases on every run.
    [Property(Arbitrary = [typeof(TopPCases)], Replay = "(1164031779,2044306851)")]
    public void Top_p_ranks_unsorted_candidates_only_as_far_as_needed_and_matches_a_full_sort((float[] Logits, float P) t)
    {
        var (logits, p) = t;
        var expected = logits.Select((l, i) => (l, i)).OrderByDescending(x => x.l).ThenBy(x => x.i).Select(x => x.i).ToArray();
        var sorted = expected.Select(i => new SamplerChain.TokenCandidate(i, logits[i])).ToArray();
        var unsorted = logits.Select((l, i) => new SamplerChain.TokenCandidate(i, l)).ToArray();
        int nSorted = SamplerChain.TopP(sorted, p, sorted: true);
        int nUnsorted = SamplerChain.TopP(unsorted, p, sorted: false);
        Assert.Equal(nSorted, nUnsorted);
        Assert.Equal(expected[..nSorted], unsorted[..nUnsorted].Select(c => c.Id));
        double z = logits.Sum(l => Math.Exp(l));
        double kept = expected[..nSorted].Sum(i => Math.Exp(logits[i]) / z);
        Assert.True(kept >= p - 1e-6 || nSorted == logits.Length);
        Assert.True(nSorted == 1 || kept - Math.Exp(logits[expected[nSorted - 1]]) / z < p + 1e-6);
    }

    [Fact]
    public void Same_seed_gives_the_same_draws_and_reset_restarts_them()
    {
        var opts = new SamplingOptions { Temperature = 1f, TopK = 0, TopP = 1, MinP = 0, Seed = 99 };
        var a = new SamplerChain(opts, Logits.Length);
        var b = new SamplerChain(opts, Logits.Length);
        var first = Enumerable.Range(0, 50).Select(_ => a.Sample(Logits)).ToArray();
        Assert.Equal(first, Enumerable.Range(0, 50).Select(_ => b.Sample(Logits)).ToArray());
        a.Reset();
        Assert.Equal(first, Enumerable.Range(0, 50).Select(_ => a.Sample(Logits)).ToArray());
        var other = new SamplerChain(opts with { Seed = 100 }, Logits.Length);
        Assert.NotEqual(first, Enumerable.Range(0, 50).Select(_ => other.Sample(Logits)).ToArray());
    }

    [Fact]
    public void Full_chain_is_reproducible_from_the_seed()
    {
        var logits = RandomLogits(2000, seed: 4);
        int[] history = [5, 17, 5, 1999, 0, 42];
        var options = AllStages with { Seed = 1234 };
        int[] Run() { var s = new SamplerChain(options, logits.Length); return [.. Enumerable.Range(0, 40).Select(_ => s.Sample(logits, history))]; }
        var first = Run();
        Assert.Equal(first, Run());
        Assert.True(first.Distinct().Count() > 1);
    }

    [Fact]
    public void State_round_trip_continues_the_same_draws_on_a_fresh_chain()
    {
        var logits = RandomLogits(500, seed: 8);
        var a = new SamplerChain(Unfiltered with { Seed = 77 }, logits.Length);
        for (int i = 0; i < 10; i++)
            a.Sample(logits);
        var state = a.State;
        var next = Enumerable.Range(0, 10).Select(_ => a.Sample(logits)).ToArray();

        var b = new SamplerChain(Unfiltered with { Seed = 1 }, logits.Length) { State = state };
        Assert.Equal(state, b.State);
        Assert.Equal(next, Enumerable.Range(0, 10).Select(_ => b.Sample(logits)).ToArray());
        Assert.Equal(a.State, b.State);
        Assert.Throws<ArgumentException>(() => b.State = default);
    }

    [Fact]
    public void Greedy_sampling_takes_no_random_draw()
    {
        var s = new SamplerChain(SamplingOptions.Greedy with { Seed = 3, RepeatPenalty = 1.5f }, Logits.Length);
        var before = s.State;
        s.Sample(Logits, [1, 2]);
        Assert.Equal(before, s.State);
    }

    [Fact]
    public void Sampling_leaves_the_logits_unmodified()
    {
        var logits = RandomLogits(300, seed: 2);
        var copy = logits.ToArray();
        var s = new SamplerChain(AllStages with { Seed = 6 }, logits.Length);
        for (int i = 0; i < 5; i++)
            s.Sample(logits, [1, 2, 3, 1]);
        Assert.Equal(copy, logits);
    }

    [Fact]
    public void Wrong_logit_count_or_history_id_outside_the_vocabulary_throws_and_leaves_no_counts_behind()
    {
        var s = new SamplerChain(SamplingOptions.Greedy with { FrequencyPenalty = 1f }, 4);
        float[] logits = [5f, 3.5f, 1f, 1f];
        Assert.Throws<ArgumentException>(() => s.Sample(new float[5]));
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => s.Sample(logits, [0, 4]));
        Assert.Equal("history", ex.ParamName);
        Assert.Equal(0, s.Sample(logits, [0]));      // 5 − 1 = 4 > 3.5: id 0 counted once, not twice
        Assert.Equal(1, s.Sample(logits, [0, 0]));   // 5 − 2 = 3 < 3.5
    }

    [Fact]
    public void Logit_bias_ids_outside_the_vocabulary_throw_in_the_constructor()
    {
        var options = Unfiltered with { LogitBias = new Dictionary<int, float> { [10] = 1f } };
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SamplerChain(options, 10));
        Assert.Equal(nameof(SamplingOptions.LogitBias), ex.ParamName);
        Assert.Contains("[0, 10)", ex.Message);
        _ = new SamplerChain(options, 11);
    }

    [Fact]
    public void Sample_allocates_nothing()
    {
        var logits = RandomLogits(5000, seed: 9);
        int[] history = [.. Enumerable.Range(0, 100).Select(i => i * 37 % 5000)];
        SamplingOptions[] configurations =
        [
            AllStages with { Seed = 1 },
            AllStages with { Seed = 2, TopK = 0 },                   // top-p's heap over the whole vocabulary
            SamplingOptions.Default with { Seed = 3 },
            SamplingOptions.Greedy with { RepeatPenalty = 1.3f, LogitBias = new Dictionary<int, float> { [7] = 3f } },
            SamplingOptions.Greedy,
        ];
        foreach (var options in configurations)
        {
            var s = new SamplerChain(options, logits.Length);
            for (int i = 0; i < 10; i++)
            {
                s.Sample(logits, history);
                s.Sample(logits);
            }
            Assert.Equal(0, Allocations.Fewest(() =>
            {
                for (int i = 0; i < 100; i++)
                    s.Sample(logits, history);
                s.Sample(logits);
            }));
        }
    }

    // Every stage on.
    internal static readonly SamplingOptions AllStages = new()
    {
        Temperature = 0.9f, TopK = 200, TypicalP = 0.95f, TopP = 0.9f, MinP = 0.02f,
        RepeatPenalty = 1.2f, RepeatLastN = 64, FrequencyPenalty = 0.1f, PresencePenalty = 0.2f,
        LogitBias = new Dictionary<int, float> { [3] = float.NegativeInfinity, [11] = 2f },
    };

    // Logits in [-8, 8) from a fixed seed.
    internal static float[] RandomLogits(int n, ulong seed)
    {
        var rng = new Xoshiro256(seed);
        return [.. Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 16 - 8))];
    }
}
