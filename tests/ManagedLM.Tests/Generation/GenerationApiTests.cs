using ManagedLM.Generation;
using ManagedLM.Sampling;
using ManagedLM.Tests.Concurrency;

namespace ManagedLM.Tests.Generation;

/// <summary>The high-level generation calls: stop strings, streaming, logprobs, prefix reuse, limits.</summary>
public class GenerationApiTests(SharedModels models) : IClassFixture<SharedModels>
{
    private const string Greedy32Text = ", there was a little girl named Lily. She loved to play outside in the park. One day, she saw";
    private static readonly GenerationOptions Greedy32 = new() { MaxTokens = 32, Sampling = SamplingOptions.Greedy };

    [Fact]
    public void Generate_returns_llama_cpps_greedy_text()
    {
        using var g = models.Stories.CreateGenerator();
        Assert.Equal(Greedy32Text, g.Generate("Once upon a time", Greedy32));
    }

    [Theory]
    [InlineData("Lily", ", there was a little girl named ")]
    [InlineData("little girl", ", there was a ")]          // spans two tokens
    [InlineData("play outside", ", there was a little girl named Lily. She loved to ")]
    [InlineData("y. S", ", there was a little girl named Lil")] // starts inside a token
    public void Stop_strings_match_across_tokens_and_are_not_emitted(string stop, string expected)
    {
        using var g = models.Stories.CreateGenerator();
        var pieces = new List<string>();
        var result = g.Complete("Once upon a time", Greedy32 with { StopStrings = [stop, "never appears"] }, t => pieces.Add(t.Text));
        Assert.Equal(StopReason.StopString, result.StopReason);
        Assert.Equal(expected, result.Text);
        Assert.Equal(expected, string.Concat(pieces));
    }

    [Fact]
    public void Held_back_text_is_released_when_generation_ends()
    {
        using var g = models.Stories.CreateGenerator();
        const string Target = ", there was a little girl named Lily.";
        var all = new List<string>();
        g.Complete("Once upon a time", Greedy32, t => all.Add(t.Text));
        int n = Enumerable.Range(1, all.Count).First(k => string.Concat(all.Take(k)) == Target);
        // "Lily." could start "Lily.X": held back at the last token, released at the end.
        var pieces = new List<TokenOutput>();
        var result = g.Complete("Once upon a time", Greedy32 with { MaxTokens = n, StopStrings = ["Lily.X"] }, pieces.Add);
        Assert.Equal(StopReason.MaxTokens, result.StopReason);
        Assert.Equal(Target, result.Text);
        Assert.Equal(result.Text, string.Concat(pieces.Select(p => p.Text)));
        Assert.Equal(TokenOutput.NoToken, pieces[^1].Id);
        Assert.Equal(n, pieces.Count(p => p.Id != TokenOutput.NoToken));
        Assert.Equal("", pieces[^2].Text);
    }

    [Fact]
    public async Task Streaming_yields_the_same_tokens_and_text_as_Complete()
    {
        using var g = models.Stories.CreateGenerator();
        var result = g.Complete("Once upon a time", Greedy32);
        var ids = new List<int>();
        var text = new System.Text.StringBuilder();
        await foreach (var t in g.GenerateStreamingAsync("Once upon a time", Greedy32))
        {
            ids.Add(t.Id);
            text.Append(t.Text);
        }
        Assert.Equal(result.GeneratedTokens, ids);
        Assert.Equal(result.Text, text.ToString());
        Assert.Equal(result.GeneratedTokens, g.LastResult!.GeneratedTokens);
    }

    [Fact]
    public void Logprobs_are_the_models_log_softmax_and_top_alternatives_are_sorted()
    {
        using var g = models.Stories.CreateGenerator();
        var result = g.Complete("Once upon a time", Greedy32 with { MaxTokens = 6, Logprobs = true, TopLogprobs = 3 });
        Assert.NotNull(result.Tokens);
        Assert.Equal(6, result.Tokens!.Count);
        foreach (var t in result.Tokens)
        {
            Assert.NotNull(t.Logprob);
            Assert.InRange(t.Logprob!.Value, -50f, 0f);
            Assert.Equal(3, t.TopLogprobs!.Length);
            Assert.Equal(t.Id, t.TopLogprobs[0].Id); // greedy: the chosen token is the most likely
            Assert.Equal(t.Logprob.Value, t.TopLogprobs[0].Logprob, 5);
            Assert.True(t.TopLogprobs[0].Logprob >= t.TopLogprobs[1].Logprob && t.TopLogprobs[1].Logprob >= t.TopLogprobs[2].Logprob);
        }
    }

    [Fact]
    public void A_prompt_that_extends_the_cache_reuses_it_with_the_same_result()
    {
        using var g = models.Stories.CreateGenerator();
        var first = g.Complete("Once upon a time", Greedy32);
        var again = g.Complete("Once upon a time", Greedy32);
        Assert.Equal(first.GeneratedTokens, again.GeneratedTokens);
        Assert.Equal(first.PromptTokens.Length - 1, again.ReusedPromptTokens);

        var noReuse = g.Complete("Once upon a time", Greedy32 with { ReusePrefix = false });
        Assert.Equal(0, noReuse.ReusedPromptTokens);
        Assert.Equal(first.GeneratedTokens, noReuse.GeneratedTokens);
    }

    [Fact]
    public void Seeded_requests_reproduce_whatever_ran_before_on_the_generator()
    {
        var options = new GenerationOptions { MaxTokens = 20, Sampling = new SamplingOptions { Temperature = 1f, Seed = 9 } };
        using var g = models.Stories.CreateGenerator();
        var first = g.Complete("Once upon a time", options).GeneratedTokens;
        g.Complete("The dog", options with { Sampling = options.Sampling! with { Seed = 10 } });
        Assert.Equal(first, g.Complete("Once upon a time", options).GeneratedTokens);
    }

    [Fact]
    public void End_of_generation_stops_unless_ignored()
    {
        // Ban everything but EOS (id 2): generation must stop at once.
        var bias = Enumerable.Range(0, 512).Where(i => i != 2).ToDictionary(i => i, _ => float.NegativeInfinity);
        using var g = models.Stories.CreateGenerator();
        var eos = g.Complete("Once upon a time", Greedy32 with { Sampling = SamplingOptions.Greedy with { LogitBias = bias } });
        Assert.Equal(StopReason.EndOfGeneration, eos.StopReason);
        Assert.Empty(eos.GeneratedTokens);

        var ignored = g.Complete("Once upon a time", Greedy32 with { MaxTokens = 3, IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Greedy with { LogitBias = bias } });
        Assert.Equal(StopReason.MaxTokens, ignored.StopReason);
        Assert.Equal(3, ignored.GeneratedTokens.Length);
    }

    [Fact]
    public void Context_full_ends_with_a_reason_or_throws_when_asked()
    {
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { ContextLength = 10 });
        var result = g.Complete("Once upon a time", Greedy32);
        Assert.Equal(StopReason.ContextFull, result.StopReason);
        Assert.Equal(6, result.GeneratedTokens.Length);
        Assert.Throws<InvalidOperationException>(() => g.Complete("Once upon a time", Greedy32 with { ThrowOnContextFull = true }));
        var tooLong = Assert.Throws<ArgumentException>(() => g.Complete(string.Concat(Enumerable.Repeat("Once upon a time ", 5)), Greedy32));
        Assert.Contains("context length is 10", tooLong.Message);
    }

    [Theory]
    [InlineData(-1, 0, false)]
    [InlineData(10, 21, true)]
    [InlineData(10, 2, false)]
    public void Invalid_options_throw(int maxTokens, int topLogprobs, bool logprobs)
    {
        using var g = models.Stories.CreateGenerator();
        Assert.Throws<ArgumentOutOfRangeException>(() => g.Complete("Once", new GenerationOptions { MaxTokens = maxTokens, TopLogprobs = topLogprobs, Logprobs = logprobs }));
        Assert.Throws<ArgumentException>(() => g.Complete("Once", new GenerationOptions { StopStrings = [""] }));
        Assert.Throws<ArgumentException>(() => g.Complete(Array.Empty<int>()));
    }
}
