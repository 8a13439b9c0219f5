using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Model;
using ManagedLM.Sampling;
using ManagedLM.Tests.Concurrency;

namespace ManagedLM.Tests.Batching;

/// <summary>
/// Requests through the engine give exactly what they give alone on a generator, whatever else shares their steps.
/// Deterministic: outputs are compared, never timings; arrival order and batch composition vary from run to run and
/// must not matter.
/// </summary>
public class BatchEngineTests(SharedModels models) : IClassFixture<SharedModels>
{
    private static readonly string[] Openings =
    [
        "Once upon a time", "The little dog", "Lily and Ben", "One day, a bird", "Tom had a big red ball",
        "The sun was hot", "In the park", "Mom said", "There was a cat", "A boy named Tim",
    ];

    // Thousands of tokens (the model's context is 4096): such a request is still running when the test acts on it.
    private static readonly GenerationOptions Endless = new() { MaxTokens = 100_000, IgnoreEndOfGeneration = true };

    private GenerationResult Solo(IReadOnlyList<int> prompt, GenerationOptions options)
    {
        using var g = models.Stories.CreateGenerator();
        return g.Complete(prompt, options);
    }

    private int[] Encode(string text) => models.Stories.Tokenizer.Encode(text, true, false);

    [Fact]
    public async Task Concurrent_greedy_requests_equal_their_solo_runs()
    {
        await using var engine = new BatchEngine(models.Stories, new BatchEngineOptions { MaxActiveSequences = 6, Threads = 2, PrefillChunk = 5 });
        var options = new GenerationOptions { MaxTokens = 30, Sampling = SamplingOptions.Greedy };
        var results = await Task.WhenAll(Openings.Select(o => Task.Run(() => engine.GenerateAsync(o, options))));
        for (int i = 0; i < Openings.Length; i++)
        {
            var solo = Solo(Encode(Openings[i]), options);
            Assert.Equal(solo.GeneratedTokens, results[i].GeneratedTokens);
            Assert.Equal(solo.Text, results[i].Text);
            Assert.Equal(solo.StopReason, results[i].StopReason);
        }
        var m = engine.Metrics;
        Assert.Equal(Openings.Length, m.Completed);
        Assert.Equal(results.Sum(r => r.GeneratedTokens.Length), m.GeneratedTokens);
        Assert.True(m.MeanBatchSize > 1, $"mean batch size {m.MeanBatchSize}: requests should have shared steps");
    }

    [Fact]
    public async Task Two_hundred_requests_with_random_arrivals_cancellations_and_lengths_equal_their_solo_runs()
    {
        const int Requests = 200;
        var rng = new Random(2024);
        var plan = Enumerable.Range(0, Requests).Select(i =>
        {
            string prompt = Openings[rng.Next(Openings.Length)] + new string(',', rng.Next(4)) + (rng.Next(3) == 0 ? " and then they went home to" : "");
            bool greedy = rng.Next(2) == 0;
            var options = new GenerationOptions
            {
                MaxTokens = 4 + rng.Next(28),
                StopStrings = rng.Next(4) == 0 ? ["."] : [],
                Sampling = greedy ? SamplingOptions.Greedy : new SamplingOptions { Temperature = 0.9f, TopK = 40, TopP = 0.95f, Seed = (ulong)(500 + i), RepeatPenalty = 1.1f },
            };
            int cancelAfter = rng.Next(6) == 0 ? rng.Next(1, 5) : -1;
            int delayMs = rng.Next(8);
            return (Prompt: Encode(prompt), Options: options, CancelAfter: cancelAfter, Delay: delayMs);
        }).ToArray();

        await using var engine = new BatchEngine(models.Stories, new BatchEngineOptions { MaxActiveSequences = 8, MaxQueuedRequests = 64, Threads = 2, PrefillChunk = 7 });
        var outcomes = await Task.WhenAll(plan.Select((p, i) => Task.Run(async () =>
        {
            await Task.Delay(p.Delay * (i % 5));
            using var cts = new CancellationTokenSource();
            var request = await engine.SubmitAsync(p.Prompt, p.Options, cts.Token);
            var tokens = new List<int>();
            try
            {
                await foreach (var t in request.Tokens)
                {
                    if (t.Id != TokenOutput.NoToken)
                        tokens.Add(t.Id);
                    if (tokens.Count == p.CancelAfter)
                        cts.Cancel();
                }
                return (Streamed: tokens, Result: (GenerationResult?)await request.Completion, Cancelled: false);
            }
            catch (OperationCanceledException)
            {
                return (Streamed: tokens, Result: (GenerationResult?)null, Cancelled: true);
            }
        })));

        int cancelled = 0;
        for (int i = 0; i < Requests; i++)
        {
            var solo = Solo(plan[i].Prompt, plan[i].Options);
            var (streamed, result, wasCancelled) = outcomes[i];
            // What was streamed is always a prefix of the solo run; a finished request equals it exactly.
            Assert.Equal(solo.GeneratedTokens.Take(streamed.Count), streamed);
            if (wasCancelled)
            {
                Assert.True(plan[i].CancelAfter > 0, $"request {i} was cancelled without asking");
                cancelled++;
                continue;
            }
            Assert.Equal(solo.GeneratedTokens, result!.GeneratedTokens);
            Assert.Equal(solo.Text, result.Text);
            Assert.Equal(solo.StopReason, result.StopReason);
        }
        var m = engine.Metrics;
        Assert.Equal(Requests, m.Completed + m.Cancelled);
        Assert.Equal(cancelled, (int)m.Cancelled);
        Assert.Equal(0, m.Active);
    }

    [Fact]
    public async Task A_cancelled_stream_ends_with_cancellation_and_the_others_go_on()
    {
        // The doomed request would run for thousands of tokens; it is cancelled after three.
        await using var engine = new BatchEngine(models.Gpt2Vocab, new BatchEngineOptions { MaxActiveSequences = 4, Threads = 1 });
        var endless = new GenerationOptions { MaxTokens = 100_000, IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Greedy };
        var options = new GenerationOptions { MaxTokens = 40, Sampling = SamplingOptions.Greedy };
        using var cts = new CancellationTokenSource();
        var doomed = await engine.SubmitAsync("Once upon a time", endless, cts.Token);
        var other = await engine.SubmitAsync("The little dog", options);
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var _ in doomed.Tokens)
            {
                if (++seen == 3)
                    cts.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => doomed.Completion);
        var result = await other.Completion;
        using var solo = models.Gpt2Vocab.CreateGenerator();
        Assert.Equal(solo.Complete("The little dog", options).GeneratedTokens, result.GeneratedTokens);
        Assert.Equal(1, engine.Metrics.Cancelled);
    }

    [Fact]
    public async Task Breaking_out_of_a_stream_cancels_the_request()
    {
        await using var engine = new BatchEngine(models.Gpt2Vocab, new BatchEngineOptions { Threads = 1 });
        var request = await engine.SubmitAsync("Once upon a time", Endless);
        await foreach (var _ in request.Tokens)
            break;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request.Completion);
    }

    [Fact]
    public async Task A_full_queue_refuses_TrySubmit_and_makes_SubmitAsync_wait()
    {
        await using var engine = new BatchEngine(models.Gpt2Vocab, new BatchEngineOptions { MaxActiveSequences = 1, MaxQueuedRequests = 1, Threads = 1 });
        var slow = Endless;
        var running = await engine.SubmitAsync("Once upon a time", slow);
        while (engine.Metrics.Active == 0)
            await Task.Delay(1);
        var queued = await engine.SubmitAsync("The little dog", slow);
        Assert.False(engine.TrySubmit("Mom said", slow, out var refused));
        Assert.Null(refused);
        Assert.Equal(1, engine.Metrics.Rejected);

        var waiting = engine.SubmitAsync("Lily and Ben", new GenerationOptions { MaxTokens = 3, IgnoreEndOfGeneration = true }).AsTask();
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        running.Cancel();
        queued.Cancel();
        var last = await waiting;
        Assert.Equal(3, (await last.Completion).GeneratedTokens.Length);
    }

    [Fact]
    public async Task A_shared_system_prompt_is_evaluated_once_and_changes_nothing()
    {
        string system = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";
        await using var engine = new BatchEngine(models.Stories, new BatchEngineOptions { Threads = 1, MinSharedPrefix = 8 });
        var options = new GenerationOptions { MaxTokens = 12, Sampling = SamplingOptions.Greedy };
        var first = await engine.GenerateAsync(system + " One day", options);
        var second = await engine.GenerateAsync(system + " Tom said", options);
        int systemTokens = Encode(system).Length;
        Assert.True(second.ReusedPromptTokens >= systemTokens - 1, $"reused {second.ReusedPromptTokens} of {systemTokens}");
        Assert.Equal(Solo(Encode(system + " Tom said"), options).GeneratedTokens, second.GeneratedTokens);
        Assert.True(engine.Metrics.SharedPromptTokens >= systemTokens - 1);
        Assert.NotEmpty(first.GeneratedTokens);
    }

    [Theory]
    [InlineData(KvCacheType.Q8_0)]
    [InlineData(KvCacheType.Q4_0)]
    public async Task Requests_over_quantized_caches_equal_their_solo_runs_and_share_prefixes(KvCacheType type)
    {
        string system = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";
        await using var engine = new BatchEngine(models.Stories, new BatchEngineOptions
        {
            MaxActiveSequences = 4, Threads = 2, PrefillChunk = 7, MinSharedPrefix = 8, KvCacheType = type,
        });
        var options = new GenerationOptions { MaxTokens = 20, Sampling = SamplingOptions.Greedy };
        string[] prompts = [.. Openings.Take(5), system + " One day", system + " Tom said"];
        var results = await Task.WhenAll(prompts.Select(p => Task.Run(() => engine.GenerateAsync(p, options))));
        var again = await engine.GenerateAsync(system + " The end", options);
        Assert.True(again.ReusedPromptTokens >= Encode(system).Length - 1, $"reused {again.ReusedPromptTokens}");
        foreach (var (prompt, result) in prompts.Append(system + " The end").Zip(results.Append(again)))
        {
            using var solo = models.Stories.CreateGenerator(new GeneratorOptions { KvCacheType = type });
            Assert.Equal(solo.Complete(Encode(prompt), options).GeneratedTokens, result.GeneratedTokens);
        }
    }

    [Fact]
    public void A_quantized_cache_type_the_model_rows_cannot_have_is_refused_at_construction()
    {
        // The GPT-2-vocabulary qwen2 has 2 KV heads of 16: rows of 32 values are fine; stories260K's 4 of 8 too.
        using var engine = new BatchEngine(models.Gpt2Vocab, new BatchEngineOptions { KvCacheType = KvCacheType.Q4_0 });
        Assert.Equal(KvCacheType.Q4_0, engine.Options.KvCacheType);
        var spec = ManagedLM.Synthesis.SynthesisSpec.Tiny with { HeadCount = 4, HeadCountKv = 1, HeadDim = 16 };
        using var model = TransformerModel.Load(Tests.Synthesis.ModelSynthesizerTests.Synthesize(spec, "rows16", 3, ManagedLM.Quantization.LlamaFileType.Q8_0));
        Assert.Contains("multiple of 32", Assert.Throws<ArgumentException>(() => new BatchEngine(model, new BatchEngineOptions { KvCacheType = KvCacheType.Q8_0 })).Message);
        Assert.Throws<ArgumentException>(() => model.CreateGenerator(new GeneratorOptions { KvCacheType = KvCacheType.Q4_0 }));
    }

    [Fact]
    public async Task A_prefix_running_in_another_sequence_is_copied()
    {
        string system = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";
        await using var engine = new BatchEngine(models.Stories, new BatchEngineOptions { Threads = 1, MinSharedPrefix = 8, MaxActiveSequences = 4 });
        var options = new GenerationOptions { MaxTokens = 60, IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Greedy };
        var first = await engine.SubmitAsync(system + " One day", options);
        await foreach (var _ in first.Tokens)
            break; // the first has prefilled and is decoding: its prefix is in its cache
        var second = await engine.GenerateAsync(system + " Tom said", options with { MaxTokens = 10 });
        Assert.True(second.ReusedPromptTokens >= Encode(system).Length - 1);
        Assert.Equal(Solo(Encode(system + " Tom said"), options with { MaxTokens = 10 }).GeneratedTokens, second.GeneratedTokens);
    }

    [Fact]
    public async Task Bad_requests_fail_at_submission_and_disposal_fails_what_is_left()
    {
        var engine = new BatchEngine(models.Stories, new BatchEngineOptions { Threads = 1, MaxActiveSequences = 1, ContextLength = 64 });
        await Assert.ThrowsAsync<ArgumentException>(() => engine.SubmitAsync(Array.Empty<int>()).AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => engine.SubmitAsync(new int[65]).AsTask());
        await Assert.ThrowsAsync<ArgumentException>(() => engine.SubmitAsync(new[] { 1, 99999 }).AsTask());
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => engine.SubmitAsync("x", new GenerationOptions { MaxTokens = -1 }).AsTask());
        Assert.Throws<ArgumentOutOfRangeException>(() => new BatchEngine(models.Stories, new BatchEngineOptions { MaxActiveSequences = 0 }));

        var slow = new GenerationOptions { MaxTokens = 60, IgnoreEndOfGeneration = true };
        var running = await engine.SubmitAsync("Once upon a time", slow);
        var queued = await engine.SubmitAsync("The little dog", slow);
        await engine.DisposeAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => queued.Completion);
        Assert.True(running.Completion.IsCompleted);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => engine.SubmitAsync("Mom said").AsTask());
    }

    [Fact]
    public async Task Draining_refuses_new_requests_and_lets_the_queued_and_running_ones_finish()
    {
        var engine = new BatchEngine(models.Stories, new BatchEngineOptions { Threads = 1, MaxActiveSequences = 1 });
        var options = new GenerationOptions { MaxTokens = 200, IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Greedy };
        var running = await engine.SubmitAsync("Once upon a time", options);
        var queued = await engine.SubmitAsync("The little dog", options with { MaxTokens = 20 });
        await using var tokens = running.Tokens.GetAsyncEnumerator();
        Assert.True(await tokens.MoveNextAsync()); // decoding (an enumeration disposed early would cancel it)
        var drain = engine.DrainAsync();
        Assert.Throws<ObjectDisposedException>(() => engine.TrySubmit("Mom said", options, out _));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => engine.SubmitAsync("Mom said").AsTask());
        Assert.True(await drain);
        int streamed = 1;
        while (await tokens.MoveNextAsync())
            streamed++;
        Assert.Equal(200, streamed);
        Assert.Equal(Solo(Encode("Once upon a time"), options).GeneratedTokens, (await running.Completion).GeneratedTokens);
        Assert.Equal(Solo(Encode("The little dog"), options with { MaxTokens = 20 }).GeneratedTokens, (await queued.Completion).GeneratedTokens);
        Assert.Equal(0, engine.Metrics.Rejected);
        Assert.Throws<ObjectDisposedException>(() => engine.TrySubmit("Mom said", options, out _));
        Assert.True(await engine.DrainAsync());   // again: already drained
    }

    [Fact]
    public async Task A_drain_cut_short_fails_what_is_left_as_disposal_does()
    {
        var engine = new BatchEngine(models.Stories, new BatchEngineOptions { Threads = 1, MaxActiveSequences = 1 });
        var endless = Endless with { ContextOverflow = ContextOverflow.Shift };   // past the context: running when the drain gives up
        var running = await engine.SubmitAsync("Once upon a time", endless);
        var queued = await engine.SubmitAsync("The little dog", endless);
        await using var tokens = running.Tokens.GetAsyncEnumerator();
        Assert.True(await tokens.MoveNextAsync());
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        Assert.False(await engine.DrainAsync(timeout.Token));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => running.Completion);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => queued.Completion);
        Assert.False(await engine.DrainAsync());
    }
}
