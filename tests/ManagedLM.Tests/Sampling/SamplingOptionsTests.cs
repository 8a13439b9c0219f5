using ManagedLM.Sampling;

namespace ManagedLM.Tests.Sampling;

public class SamplingOptionsTests
{
    [Fact]
    public void Defaults_are_llama_cpp_s()
    {
        var d = SamplingOptions.Default;
        Assert.Equal(0.8f, d.Temperature);
        Assert.Equal(40, d.TopK);
        Assert.Equal(0.95f, d.TopP);
        Assert.Equal(0.05f, d.MinP);
        Assert.Equal(1f, d.TypicalP);
        Assert.Equal(1f, d.RepeatPenalty);
        Assert.Equal(64, d.RepeatLastN);
        Assert.Equal(0f, d.FrequencyPenalty);
        Assert.Equal(0f, d.PresencePenalty);
        Assert.Empty(d.LogitBias);
        Assert.Null(d.Seed);
        Assert.Equal(0f, SamplingOptions.Greedy.Temperature);
        d.Validate();
        SamplingOptions.Greedy.Validate();
    }

    public static TheoryData<SamplingOptions, string, string> Invalid => new()
    {
        { new() { Temperature = -0.1f }, nameof(SamplingOptions.Temperature), "≥ 0" },
        { new() { Temperature = float.NaN }, nameof(SamplingOptions.Temperature), "≥ 0" },
        { new() { Temperature = float.PositiveInfinity }, nameof(SamplingOptions.Temperature), "finite" },
        { new() { TopK = -1 }, nameof(SamplingOptions.TopK), "≥ 0" },
        { new() { TopP = 0f }, nameof(SamplingOptions.TopP), "(0, 1]" },
        { new() { TopP = 1.5f }, nameof(SamplingOptions.TopP), "(0, 1]" },
        { new() { TopP = float.NaN }, nameof(SamplingOptions.TopP), "(0, 1]" },
        { new() { MinP = -0.5f }, nameof(SamplingOptions.MinP), "[0, 1]" },
        { new() { MinP = 1.01f }, nameof(SamplingOptions.MinP), "[0, 1]" },
        { new() { MinP = float.NaN }, nameof(SamplingOptions.MinP), "[0, 1]" },
        { new() { TypicalP = 0f }, nameof(SamplingOptions.TypicalP), "(0, 1]" },
        { new() { TypicalP = 1.1f }, nameof(SamplingOptions.TypicalP), "(0, 1]" },
        { new() { TypicalP = float.NaN }, nameof(SamplingOptions.TypicalP), "(0, 1]" },
        { new() { RepeatPenalty = 0f }, nameof(SamplingOptions.RepeatPenalty), "> 0" },
        { new() { RepeatPenalty = -1f }, nameof(SamplingOptions.RepeatPenalty), "> 0" },
        { new() { RepeatPenalty = float.NaN }, nameof(SamplingOptions.RepeatPenalty), "> 0" },
        { new() { RepeatPenalty = float.PositiveInfinity }, nameof(SamplingOptions.RepeatPenalty), "finite" },
        { new() { RepeatLastN = -2 }, nameof(SamplingOptions.RepeatLastN), "≥ -1" },
        { new() { FrequencyPenalty = float.NaN }, nameof(SamplingOptions.FrequencyPenalty), "finite" },
        { new() { FrequencyPenalty = float.NegativeInfinity }, nameof(SamplingOptions.FrequencyPenalty), "finite" },
        { new() { PresencePenalty = float.NaN }, nameof(SamplingOptions.PresencePenalty), "finite" },
        { new() { PresencePenalty = float.PositiveInfinity }, nameof(SamplingOptions.PresencePenalty), "finite" },
        { new() { LogitBias = new Dictionary<int, float> { [1] = float.NaN } }, nameof(SamplingOptions.LogitBias), "finite or -∞" },
        { new() { LogitBias = new Dictionary<int, float> { [1] = float.PositiveInfinity } }, nameof(SamplingOptions.LogitBias), "finite or -∞" },
        { new() { LogitBias = new Dictionary<int, float> { [-1] = 1f } }, nameof(SamplingOptions.LogitBias), "≥ 0" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Invalid_options_throw_naming_the_option_and_its_bound(SamplingOptions options, string name, string bound)
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new SamplerChain(options, 10));
        Assert.Equal(name, ex.ParamName);
        Assert.Contains(bound, ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(options.Validate);
    }

    [Fact]
    public void Boundary_values_are_valid()
    {
        new SamplingOptions
        {
            Temperature = 0, TopK = 0, TopP = 1, MinP = 1, TypicalP = 1, RepeatPenalty = 0.01f, RepeatLastN = -1,
            FrequencyPenalty = -2, PresencePenalty = -2, LogitBias = new Dictionary<int, float> { [0] = float.NegativeInfinity },
        }.Validate();
        new SamplingOptions { TopP = float.Epsilon, MinP = 0, TypicalP = float.Epsilon, RepeatLastN = 0 }.Validate();
    }

    [Fact]
    public void Logit_bias_is_an_immutable_copy()
    {
        var source = new Dictionary<int, float> { [3] = -1f };
        var options = new SamplingOptions { LogitBias = source };
        source[3] = 5f;
        source[4] = 1f;
        Assert.Equal(new Dictionary<int, float> { [3] = -1f }, options.LogitBias);
        Assert.IsNotType<Dictionary<int, float>>(options.LogitBias);
        Assert.Throws<ArgumentNullException>(() => new SamplingOptions { LogitBias = null! });
    }
}
