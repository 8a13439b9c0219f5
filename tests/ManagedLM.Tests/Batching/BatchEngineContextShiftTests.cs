using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Sampling;
using ManagedLM.Tests.Concurrency;

namespace ManagedLM.Tests.Batching;

/// <summary>
/// A batched request shifts its own sequence between steps, from its own history only: its tokens and log-probabilities
/// are the bits it gets alone on a generator, whatever shares its steps (other shifting requests, stopping ones, prompts
/// being prefilled, idle caches of shifted sequences).
/// </summary>
public class BatchEngineContextShiftTests(SharedModels models) : IClassFixture<SharedModels>
{
    private const int Context = 64;

    private GenerationResult Solo(int[] prompt, GenerationOptions options)
    {
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { ContextLength = Context });
        return g.Complete(prompt, options);
    }

    [Fact]
    public async Task Shifting_requests_batched_with_others_equal_their_solo_runs_bit_for_bit()
    {
        string[] openings = ["Once upon a time", "The little dog", "Lily and Ben", "One day, a bird", "Tom had a big red ball", "The sun was hot"];
        var requests = openings.SelectMany((text, i) => new[]
        {
            (Prompt: models.Stories.Tokenizer.Encode(text, true, false), Options: new GenerationOptions
            {
                MaxTokens = 4 * Context + 13 * i, IgnoreEndOfGeneration = true, ContextOverflow = ContextOverflow.Shift,
                KeepTokens = i % 3 == 0 ? -1 : i % 3, DiscardTokens = i == 4 ? 9 : 0, Logprobs = true, TopLogprobs = 2,
                Sampling = i % 2 == 0 ? SamplingOptions.Greedy : new SamplingOptions { Temperature = 0.8f, Seed = (ulong)i },
            }),
            (Prompt: models.Stories.Tokenizer.Encode(text, true, false), Options: new GenerationOptions
            {
                MaxTokens = 100, IgnoreEndOfGeneration = true, Logprobs = true, Sampling = new SamplingOptions { Seed = 100 + (ulong)i },
            }),
        }).ToArray();

        await using var engine = new BatchEngine(models.Stories, new BatchEngineOptions
        {
            MaxActiveSequences = 5, PrefillChunk = 7, Threads = 2, ContextLength = Context, MinSharedPrefix = 1,
        });
        async Task<GenerationResult> Run(int[] prompt, GenerationOptions options) =>
            await (await engine.SubmitAsync(prompt, options)).Completion;
        var results = await Task.WhenAll(requests.Select(r => Task.Run(() => Run(r.Prompt, r.Options))));
        // Later requests find the idle caches of shifted sequences; they may reuse only those caches' kept tokens.
        var later = await Task.WhenAll(requests.Take(4).Select(r => Task.Run(() => Run(r.Prompt, r.Options))));

        for (int i = 0; i < requests.Length; i++)
        {
            var solo = Solo(requests[i].Prompt, requests[i].Options);
            foreach (var batched in i < later.Length ? new[] { results[i], later[i] } : [results[i]])
            {
                Assert.Equal(solo.GeneratedTokens, batched.GeneratedTokens);
                Assert.Equal(solo.Text, batched.Text);
                Assert.Equal(solo.StopReason, batched.StopReason);
                Assert.Equal(solo.ContextShifts, batched.ContextShifts);
                Assert.Equal(solo.DiscardedTokens, batched.DiscardedTokens);
                Assert.Equal(solo.Tokens!.Select(t => t.Logprob), batched.Tokens!.Select(t => t.Logprob));
            }
            if (requests[i].Options.ContextOverflow == ContextOverflow.Shift)
            {
                Assert.Equal(StopReason.MaxTokens, solo.StopReason);
                Assert.True(solo.ContextShifts >= 3, $"request {i}: {solo.ContextShifts} shifts");
            }
            else
                Assert.Equal(StopReason.ContextFull, solo.StopReason);
        }
    }

    [Fact]
    public async Task An_invalid_KeepTokens_is_refused_at_submission()
    {
        await using var engine = new BatchEngine(models.Stories, new BatchEngineOptions { ContextLength = Context });
        int[] prompt = [1, 403, 407, 261, 378];
        var shift = new GenerationOptions { ContextOverflow = ContextOverflow.Shift };
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => engine.SubmitAsync(prompt, shift with { KeepTokens = 9 }).AsTask());
        Assert.Equal("KeepTokens", e.ParamName);
        Assert.Contains("[-1, 4]", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => engine.TrySubmit(prompt, shift with { KeepTokens = -3 }, out _));
        Assert.Equal(0, engine.Metrics.Completed);
    }
}
