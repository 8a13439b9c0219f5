using ManagedLM.Sampling;

namespace ManagedLM.Tests.Sampling;

public class LogProbabilitiesTests
{
    // ln softmax in double precision.
    private static double[] Reference(float[] logits)
    {
        double max = logits.Max();
        double logZ = max + Math.Log(logits.Sum(l => Math.Exp(l - max)));
        return [.. logits.Select(l => l - logZ)];
    }

    [Theory]
    [InlineData(1000, 0f)]
    [InlineData(1000, 500f)]     // large logits: no overflow
    [InlineData(32000, -300f)]
    public void Of_matches_a_double_precision_log_softmax(int vocab, float offset)
    {
        var logits = SamplerChainTests.RandomLogits(vocab, seed: (ulong)vocab).Select(l => l + offset).ToArray();
        var expected = Reference(logits);
        for (int id = 0; id < vocab; id += 7)
            Assert.Equal(expected[id], LogProbabilities.Of(logits, id), 1e-5);
    }

    [Fact]
    public void Top_returns_the_most_likely_best_first_with_ties_to_the_lower_id()
    {
        float[] logits = [1f, 4f, 2f, 4f, -3f, 3f, 2f];
        var expected = Reference(logits);
        var ids = new int[5];
        var logprobs = new float[5];
        Assert.Equal(5, LogProbabilities.Top(logits, ids, logprobs));
        Assert.Equal([1, 3, 5, 2, 6], ids);
        for (int i = 0; i < 5; i++)
            Assert.Equal(expected[ids[i]], logprobs[i], 1e-6);
    }

    [Fact]
    public void Top_over_a_large_vocabulary_matches_a_full_sort()
    {
        var logits = SamplerChainTests.RandomLogits(50_000, seed: 12);
        var expected = Reference(logits);
        var order = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(20).ToArray();
        var ids = new int[20];
        var logprobs = new float[20];
        Assert.Equal(20, LogProbabilities.Top(logits, ids, logprobs));
        Assert.Equal(order, ids);
        for (int i = 0; i < 20; i++)
            Assert.Equal(expected[ids[i]], logprobs[i], 1e-5);
    }

    [Fact]
    public void Top_asks_for_at_most_the_vocabulary_and_checks_the_output_length()
    {
        float[] logits = [0.5f, -1f, 2f];
        var ids = new int[8];
        var logprobs = new float[8];
        Assert.Equal(3, LogProbabilities.Top(logits, ids, logprobs));
        Assert.Equal([2, 0, 1], ids[..3]);
        Assert.Equal(1.0, logprobs[..3].Sum(lp => Math.Exp(lp)), 1e-6);
        Assert.Equal(0, LogProbabilities.Top(logits, [], []));
        Assert.Throws<ArgumentException>(() => LogProbabilities.Top(logits, new int[3], new float[2]));
        Assert.Throws<ArgumentOutOfRangeException>(() => LogProbabilities.Of(logits, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => LogProbabilities.Of(logits, -1));
    }

    [Fact]
    public void Log_probabilities_allocate_nothing()
    {
        var logits = SamplerChainTests.RandomLogits(5000, seed: 13);
        var ids = new int[10];
        var logprobs = new float[10];
        LogProbabilities.Top(logits, ids, logprobs);
        LogProbabilities.Of(logits, 5);
        Assert.Equal(0, Allocations.Fewest(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                LogProbabilities.Top(logits, ids, logprobs);
                LogProbabilities.Of(logits, i);
            }
        }));
    }
}
