using ManagedLM.Generation;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Concurrency;

/// <summary>Cancellation stops within one token and leaves the generator reusable.</summary>
public class CancellationTests(SharedModels models) : IClassFixture<SharedModels>
{
    private static readonly GenerationOptions Greedy64 = new() { MaxTokens = 64, Sampling = SamplingOptions.Greedy };

    [Fact]
    public void Cancelling_mid_generation_stops_within_one_token_and_the_generator_is_reusable()
    {
        using var g = models.Stories.CreateGenerator();
        string expected = g.Generate("Once upon a time", Greedy64);
        using var cts = new CancellationTokenSource();
        int seen = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => g.Complete("Once upon a time", Greedy64, _ =>
        {
            if (++seen == 5)
                cts.Cancel();
        }, cts.Token));
        Assert.Equal(5, seen);
        Assert.Equal(expected, g.Generate("Once upon a time", Greedy64));
    }

    [Fact]
    public async Task Cancelling_a_stream_ends_it_within_one_token_and_the_generator_is_reusable()
    {
        using var g = models.Stories.CreateGenerator();
        string expected = g.Generate("Once upon a time", Greedy64);
        using var cts = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in g.GenerateStreamingAsync("Once upon a time", Greedy64, cts.Token))
            {
                if (++seen == 3)
                    cts.Cancel();
            }
        });
        Assert.Equal(3, seen);
        var text = new System.Text.StringBuilder();
        await foreach (var t in g.GenerateStreamingAsync("Once upon a time", Greedy64))
            text.Append(t.Text);
        Assert.Equal(expected, text.ToString());
        Assert.Equal(StopReason.MaxTokens, g.LastResult!.StopReason);
    }

    [Fact]
    public async Task A_token_cancelled_before_the_call_never_starts_it()
    {
        using var g = models.Stories.CreateGenerator();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => g.GenerateAsync("Once", Greedy64, cts.Token));
        Assert.Equal(0, g.Position);
    }
}
