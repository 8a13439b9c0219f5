using ManagedLM.Sampling;

namespace ManagedLM.Tests.Sampling;

/// <summary>Logits with NaN or +∞, or with no finite value, cannot be sampled from: every path says so the same way.</summary>
public class NonFiniteLogitsTests
{
    private static readonly SamplingOptions Sampled = new() { Temperature = 0.8f, TopK = 40, TopP = 0.95f, MinP = 0.05f, Seed = 3 };

    public static TheoryData<float[], string> Unusable => new()
    {
        { [1f, float.NaN, 2f, 0f], "(logit 1 of 4 is NaN)" },
        { [float.NaN, float.NaN, float.NaN, float.NaN], "(logit 0 of 4 is NaN)" },
        { [1f, 2f, 0f, float.PositiveInfinity], "(logit 3 of 4 is +∞)" },
        { [float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity, float.NegativeInfinity], "(all 4 are -∞)" },
        { [float.PositiveInfinity, float.NaN, 0f, 0f], "(logit 1 of 4 is NaN)" },
    };

    [Theory]
    [MemberData(nameof(Unusable))]
    public void Greedy_sampled_penalized_and_argmax_paths_all_throw_naming_the_logit(float[] logits, string detail)
    {
        SamplingOptions[] chains =
        [
            SamplingOptions.Greedy,
            SamplingOptions.Greedy with { RepeatPenalty = 1.3f },
            SamplingOptions.Greedy with { LogitBias = new Dictionary<int, float> { [0] = 1f } },
            Sampled,
            Sampled with { TypicalP = 0.5f, RepeatPenalty = 1.1f },
        ];
        foreach (var options in chains)
        {
            var ex = Assert.Throws<NonFiniteLogitsException>(() => new SamplerChain(options, logits.Length).Sample(logits, [0, 2]));
            Assert.StartsWith("The model produced non-finite logits " + detail, ex.Message);
        }
        Assert.Contains(detail, Assert.Throws<NonFiniteLogitsException>(() => SamplerChain.ArgMax(logits)).Message);
    }

    [Theory]
    [MemberData(nameof(Unusable))]
    public void Logprob_paths_throw_too(float[] logits, string detail)
    {
        Assert.Contains(detail, Assert.Throws<NonFiniteLogitsException>(() => LogProbabilities.Of(logits, 0)).Message);
        Assert.Contains(detail, Assert.Throws<NonFiniteLogitsException>(() => LogProbabilities.Top(logits, new int[2], new float[2])).Message);
    }

    [Fact]
    public void It_is_an_ArithmeticException_and_a_draw_is_not_consumed()
    {
        Assert.IsAssignableFrom<ArithmeticException>(new NonFiniteLogitsException("x"));
        var chain = new SamplerChain(Sampled, 4);
        var fresh = new SamplerChain(Sampled, 4);
        Assert.Throws<NonFiniteLogitsException>(() => chain.Sample([float.NaN, 0, 0, 0]));
        float[] good = [1f, 1.1f, 0.9f, 1.05f];
        Assert.Equal(fresh.Sample(good), chain.Sample(good));
        Assert.Equal(fresh.State, chain.State);
    }

    [Fact]
    public void Negative_infinity_beside_finite_logits_is_a_token_of_probability_zero()
    {
        float[] logits = [float.NegativeInfinity, 2f, float.NegativeInfinity, 1f];
        Assert.Equal(1, new SamplerChain(SamplingOptions.Greedy, 4).Sample(logits));
        Assert.DoesNotContain(0, Enumerable.Range(0, 200).Select(_ => new SamplerChain(Sampled with { Seed = null }, 4).Sample(logits)));
        Assert.Equal(float.NegativeInfinity, LogProbabilities.Of(logits, 0));
    }
}
