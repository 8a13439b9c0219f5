using ManagedLM.Sampling;

namespace ManagedLM.Tests.Sampling;

public class SamplerChainTests
{
    private static readonly float[] Logits = [1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f];

    [Fact]
    public void Greedy_takes_the_argmax_and_ties_go_to_the_lower_id()
    {
        var s = new SamplerChain(SamplingOptions.Greedy, Logits.Length);
        Assert.Equal(1, s.Sample(Logits));
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
        var s = new SamplerChain(new SamplingOptions { Temperature = 1f, TopK = 0, TopP = 1, MinP = 0, Seed = 11 }, Logits.Length);
        const int draws = 200_000;
        var counts = new int[Logits.Length];
        for (int i = 0; i < draws; i++)
            counts[s.Sample(Logits)]++;
        double z = Logits.Sum(l => Math.Exp(l));
        for (int i = 0; i < Logits.Length; i++)
            Assert.InRange(counts[i] / (double)draws, Math.Exp(Logits[i]) / z - 0.005, Math.Exp(Logits[i]) / z + 0.005);
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
    }

    [Theory]
    [InlineData(-0.1f, 40, 0.9f, 0.05f)]
    [InlineData(float.NaN, 40, 0.9f, 0.05f)]
    [InlineData(0.8f, -1, 0.9f, 0.05f)]
    [InlineData(0.8f, 40, 0f, 0.05f)]
    [InlineData(0.8f, 40, 1.5f, 0.05f)]
    [InlineData(0.8f, 40, 0.9f, -0.5f)]
    public void Invalid_options_throw_naming_the_bound(float temperature, int topK, float topP, float minP)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new SamplerChain(new SamplingOptions { Temperature = temperature, TopK = topK, TopP = topP, MinP = minP }, 10));
        Assert.Matches(@"[\[(]|≥", ex.Message);
    }
}
