using ManagedLM.Generation;
using ManagedLM.Sampling;
using ManagedLM.Tests.Concurrency;

namespace ManagedLM.Tests.Generation;

/// <summary>
/// The overflow policies of a generation: Stop ends at the context; Shift (and TruncateHistory, which is Shift for a plain
/// prompt) keeps generating for ten contexts and more, keeping what KeepTokens asks, deterministically, and a cache
/// shifted once is never reused beyond its kept tokens for another prompt.
/// </summary>
public class ContextOverflowTests(SharedModels models) : IClassFixture<SharedModels>
{
    private const int Context = 64;
    private static readonly int[] OnceUponATime = [1, 403, 407, 261, 378];

    private Generator Create(SamplingOptions? sampling = null) =>
        models.Stories.CreateGenerator(new GeneratorOptions { ContextLength = Context, Sampling = sampling ?? SamplingOptions.Greedy });

    private static GenerationOptions Long(ContextOverflow policy, int tokens = 10 * Context) =>
        new() { MaxTokens = tokens, IgnoreEndOfGeneration = true, ContextOverflow = policy };

    [Fact]
    public void Stop_ends_at_the_context()
    {
        using var g = Create();
        var r = g.Complete(OnceUponATime, Long(ContextOverflow.Stop));
        Assert.Equal(StopReason.ContextFull, r.StopReason);
        Assert.Equal(Context - OnceUponATime.Length + 1, r.GeneratedTokens.Length);   // the last one emitted, not evaluated
        Assert.Equal(0, r.ContextShifts);
    }

    [Theory]
    [InlineData(ContextOverflow.Shift)]
    [InlineData(ContextOverflow.TruncateHistory)]
    public void Shifting_generates_ten_contexts_and_keeps_the_bos_and_the_newest_tokens(ContextOverflow policy)
    {
        using var g = Create();
        var r = g.Complete(OnceUponATime, Long(policy));
        Assert.Equal(StopReason.MaxTokens, r.StopReason);
        Assert.Equal(10 * Context, r.GeneratedTokens.Length);
        // Each shift discards half of what follows the BOS: (64 − 1) / 2 = 31.
        Assert.Equal(31 * r.ContextShifts, r.DiscardedTokens);
        int[] evaluated = [.. OnceUponATime, .. r.GeneratedTokens[..^1]];
        Assert.Equal(evaluated.Length, g.Position + r.DiscardedTokens);
        Assert.InRange(g.Position, Context / 2, Context);
        Assert.Equal(1, g.Tokens[0]);
        Assert.Equal(evaluated[^(g.Position - 1)..], g.Tokens.Skip(1));
        // The first shift comes with the context full, then one every 31 tokens.
        Assert.Equal((evaluated.Length - Context - 1) / 31 + 1, r.ContextShifts);
        // The text keeps coming: not one token repeated for ever.
        Assert.True(r.GeneratedTokens[^64..].Distinct().Count() > 8, string.Join(",", r.GeneratedTokens[^64..]));
    }

    [Fact]
    public void TruncateHistory_is_Shift_for_a_plain_prompt_and_a_shifting_request_is_reproducible()
    {
        var sampling = new SamplingOptions { Temperature = 0.9f, Seed = 11 };
        using var g = Create(sampling);
        var shift = g.Complete(OnceUponATime, Long(ContextOverflow.Shift));
        var truncate = g.Complete(OnceUponATime, Long(ContextOverflow.TruncateHistory));   // on the shifted generator
        using var fresh = Create(sampling);
        var again = fresh.Complete(OnceUponATime, Long(ContextOverflow.Shift));
        Assert.Equal(shift.GeneratedTokens, truncate.GeneratedTokens);
        Assert.Equal(shift.GeneratedTokens, again.GeneratedTokens);
        Assert.True(shift.ContextShifts > 5);
    }

    [Fact]
    public void KeepTokens_keeps_that_much_of_the_prompt_and_DiscardTokens_sets_the_step()
    {
        int[] prompt = [1, 403, 407, 261, 378, 432, 383, 286, 261];
        using var g = Create();
        var all = g.Complete(prompt, Long(ContextOverflow.Shift) with { KeepTokens = -1 });
        Assert.Equal(prompt, g.Tokens.Take(prompt.Length));
        Assert.Equal((Context - prompt.Length) / 2 * all.ContextShifts, all.DiscardedTokens);

        var three = g.Complete(prompt, Long(ContextOverflow.Shift) with { KeepTokens = 3 });
        int[] evaluated = [.. prompt, .. three.GeneratedTokens[..^1]];
        Assert.Equal(prompt[..4], g.Tokens.Take(4));   // BOS + 3, then the newest tokens
        Assert.Equal(evaluated[^(g.Position - 4)..], g.Tokens.Skip(4));

        var tens = g.Complete(prompt, Long(ContextOverflow.Shift) with { DiscardTokens = 10 });
        Assert.Equal(10 * tens.ContextShifts, tens.DiscardedTokens);
        Assert.Equal((evaluated.Length - Context - 1) / 10 + 1, tens.ContextShifts);
    }

    [Fact]
    public void KeepTokens_out_of_bounds_is_an_ArgumentException_naming_the_bound()
    {
        using var g = Create();
        var shift = Long(ContextOverflow.Shift);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => g.Complete(OnceUponATime, shift with { KeepTokens = -2 }));
        Assert.Equal("KeepTokens", e.ParamName);
        Assert.Contains("≥ -1", e.Message);
        e = Assert.Throws<ArgumentOutOfRangeException>(() => g.Complete(OnceUponATime, shift with { KeepTokens = 5 }));
        Assert.Contains("[-1, 4]", e.Message);   // 4 prompt tokens after the BOS
        e = Assert.Throws<ArgumentOutOfRangeException>(() => g.Complete(OnceUponATime, shift with { DiscardTokens = -1 }));
        Assert.Equal("DiscardTokens", e.ParamName);
        int[] longPrompt = [1, .. Enumerable.Range(0, 61).Select(i => 300 + i)];   // 62 tokens in a context of 64
        e = Assert.Throws<ArgumentOutOfRangeException>(() => g.Complete(longPrompt, shift with { KeepTokens = -1 }));
        Assert.Contains("at most 60", e.Message);
        Assert.Equal(0, g.Position);   // refused before anything was evaluated
        // The bound holds at 60 kept tokens; and with Stop, KeepTokens is not used.
        Assert.Equal(StopReason.MaxTokens, g.Complete(longPrompt, shift with { KeepTokens = 59, MaxTokens = 20 }).StopReason);
        Assert.Equal(StopReason.ContextFull, g.Complete(longPrompt, Long(ContextOverflow.Stop) with { KeepTokens = 1000 }).StopReason);
    }

    [Fact]
    public void A_shifted_cache_is_reused_only_up_to_its_kept_tokens()
    {
        using var g = Create();
        g.Complete(OnceUponATime, Long(ContextOverflow.Shift, 100));
        int[] continued = [.. g.Tokens, 300];
        var reused = g.Complete(continued, new GenerationOptions { MaxTokens = 8 });
        Assert.Equal(1, reused.ReusedPromptTokens);   // the BOS; the moved entries saw tokens that are gone
        using var fresh = Create();
        Assert.Equal(fresh.Complete(continued, new GenerationOptions { MaxTokens = 8 }).GeneratedTokens, reused.GeneratedTokens);
        // Once evaluated again, the cache is exact and reused in full.
        Assert.Equal(continued.Length - 1, g.Complete(continued, new GenerationOptions { MaxTokens = 1 }).ReusedPromptTokens);
    }

    [Fact]
    public async Task Streaming_keeps_producing_past_the_context()
    {
        using var g = Create();
        int count = 0;
        await foreach (var t in g.GenerateStreamingAsync(OnceUponATime, Long(ContextOverflow.Shift, 3 * Context)))
            count += t.Id == TokenOutput.NoToken ? 0 : 1;
        Assert.Equal(3 * Context, count);
        Assert.True(g.LastResult!.ContextShifts >= 3);
    }
}
