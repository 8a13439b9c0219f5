using ManagedLM.Generation;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Concurrency;

/// <summary>
/// Many generators on one shared model never see each other's state: every concurrent output equals
/// the same request run alone, token for token. Deterministic: outputs are compared, never timings.
/// </summary>
public class IsolationTests(SharedModels models) : IClassFixture<SharedModels>
{
    private static readonly string[] Openings =
    [
        "Once upon a time", "The little dog", "Lily and Ben", "One day, a bird", "Tom had a big red ball",
        "The sun was hot", "In the park", "Mom said", "There was a cat", "A boy named Tim",
    ];

    private static (string Prompt, GenerationOptions Options) Request(int i) => (
        Openings[i % Openings.Length] + (i >= Openings.Length ? new string(',', i / Openings.Length) : ""),
        new GenerationOptions
        {
            MaxTokens = 24,
            Sampling = new SamplingOptions { Temperature = 0.9f, TopK = 40, TopP = 0.95f, Seed = (ulong)(1000 + i), RepeatPenalty = 1.1f },
        });

    private static int[] Solo(TransformerModel model, string prompt, GenerationOptions options)
    {
        using var g = model.CreateGenerator();
        return g.Complete(prompt, options).GeneratedTokens;
    }

    [Fact]
    public void Thirty_two_generators_on_sixteen_threads_equal_their_solo_runs_twenty_times()
    {
        const int requests = 32, threads = 16, repetitions = 20;
        var solo = Enumerable.Range(0, requests).Select(i => { var (p, o) = Request(i); return Solo(models.Stories, p, o); }).ToArray();
        Assert.Equal(requests, solo.Select(s => string.Join(",", s)).Distinct().Count());

        for (int rep = 0; rep < repetitions; rep++)
        {
            var generators = Enumerable.Range(0, requests).Select(_ => models.Stories.CreateGenerator()).ToArray();
            var outputs = new int[requests][];
            using var start = new Barrier(threads);
            var workers = Enumerable.Range(0, threads).Select(t => new Thread(() =>
            {
                start.SignalAndWait();
                for (int i = t; i < requests; i += threads)
                {
                    var (p, o) = Request(i);
                    outputs[i] = generators[i].Complete(p, o).GeneratedTokens;
                }
            })).ToArray();
            foreach (var w in workers) w.Start();
            foreach (var w in workers) w.Join();
            for (int i = 0; i < requests; i++)
                Assert.True(solo[i].SequenceEqual(outputs[i]), $"repetition {rep}, request {i} differs from its solo run");
            foreach (var g in generators) g.Dispose();
        }
    }

    [Fact]
    public void Two_generators_stepped_alternately_equal_their_solo_runs()
    {
        var tokenizer = models.Stories.Tokenizer;
        int[] a = tokenizer.Encode("Once upon a time"), b = tokenizer.Encode("The little dog");
        int[] SoloGreedy(int[] prompt)
        {
            using var g = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
            g.Prefill(prompt);
            var ids = new List<int>();
            for (int i = 0; i < 30; i++) { int t = g.Sample(); ids.Add(t); g.Step(t); }
            return ids.ToArray();
        }
        using var ga = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
        using var gb = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
        ga.Prefill(a);
        gb.Prefill(b);
        var outA = new List<int>();
        var outB = new List<int>();
        for (int i = 0; i < 30; i++)
        {
            int ta = ga.Sample(); outA.Add(ta); ga.Step(ta);
            int tb = gb.Sample(); outB.Add(tb); gb.Step(tb);
        }
        Assert.Equal(SoloGreedy(a), outA);
        Assert.Equal(SoloGreedy(b), outB);
        Assert.NotEqual(outA, outB);
    }

    [Fact]
    public void Two_models_with_different_tokenizers_run_side_by_side()
    {
        var stories = models.Stories;
        var gpt2 = models.Gpt2Vocab;
        Assert.NotEqual(stories.Tokenizer.Encode("Hello world"), gpt2.Tokenizer.Encode("Hello world"));
        var options = new GenerationOptions { MaxTokens = 16, Sampling = new SamplingOptions { Seed = 5 } };
        var soloStories = Solo(stories, "Once upon a time", options);
        var soloGpt2 = Solo(gpt2, "Hello world", options);

        var results = new int[8][];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
            results[i] = i % 2 == 0 ? Solo(stories, "Once upon a time", options) : Solo(gpt2, "Hello world", options));
        for (int i = 0; i < 8; i++)
            Assert.Equal(i % 2 == 0 ? soloStories : soloGpt2, results[i]);
        Assert.All(soloGpt2, id => Assert.InRange(id, 0, 50256));
        Assert.All(soloStories, id => Assert.InRange(id, 0, 511));
    }

    [Fact]
    public void ThreadLocal_generators_in_Parallel_For_equal_solo_runs()
    {
        var solo = Enumerable.Range(0, 12).Select(i => { var (p, o) = Request(i); return Solo(models.Stories, p, o); }).ToArray();
        using var local = new ThreadLocal<Generator>(() => models.Stories.CreateGenerator(), trackAllValues: true);
        var outputs = new int[12][];
        Parallel.For(0, 12, i =>
        {
            var (p, o) = Request(i);
            outputs[i] = local.Value!.Complete(p, o).GeneratedTokens;
        });
        foreach (var g in local.Values) g.Dispose();
        for (int i = 0; i < 12; i++)
            Assert.Equal(solo[i], outputs[i]);
    }

    [Fact]
    public async Task Task_Run_per_prompt_equals_solo_runs()
    {
        var solo = Enumerable.Range(0, 8).Select(i => { var (p, o) = Request(i); return Solo(models.Stories, p, o); }).ToArray();
        var tasks = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
        {
            using var g = models.Stories.CreateGenerator();
            var (p, o) = Request(i);
            return (await g.GenerateAsync(p, o)).GeneratedTokens;
        })).ToArray();
        var outputs = await Task.WhenAll(tasks);
        for (int i = 0; i < 8; i++)
            Assert.Equal(solo[i], outputs[i]);
    }

    [Fact]
    public void Pool_bounds_concurrency_and_results_equal_solo_runs()
    {
        var solo = Enumerable.Range(0, 10).Select(i => { var (p, o) = Request(i); return Solo(models.Stories, p, o); }).ToArray();
        using var pool = new GeneratorPool(models.Stories, maxSize: 3);
        int inUse = 0, maxInUse = 0;
        var outputs = new int[10][];
        Parallel.For(0, 10, new ParallelOptions { MaxDegreeOfParallelism = 6 }, i =>
        {
            using var lease = pool.Rent();
            int now = Interlocked.Increment(ref inUse);
            int seen;
            while ((seen = Volatile.Read(ref maxInUse)) < now && Interlocked.CompareExchange(ref maxInUse, now, seen) != seen) { }
            var (p, o) = Request(i);
            outputs[i] = lease.Generator.Complete(p, o).GeneratedTokens;
            Interlocked.Decrement(ref inUse);
        });
        Assert.InRange(maxInUse, 1, 3);
        Assert.InRange(pool.Created, 1, 3);
        for (int i = 0; i < 10; i++)
            Assert.Equal(solo[i], outputs[i]);
    }

    [Fact]
    public async Task Pool_waits_when_empty_and_resets_what_is_returned()
    {
        using var pool = new GeneratorPool(models.Stories, maxSize: 1);
        var first = pool.Rent();
        first.Generator.Prefill([1, 403, 407]);
        var waiting = pool.RentAsync().AsTask();
        Assert.False(waiting.IsCompleted);
        var g = first.Generator;
        first.Dispose();
        using var second = await waiting;
        Assert.Same(g, second.Generator);
        Assert.Equal(0, second.Generator.Position);
        Assert.Throws<ObjectDisposedException>(() => first.Generator);
    }

    [Fact]
    public async Task A_pool_that_keeps_caches_hands_out_the_generator_with_the_longest_cached_prefix()
    {
        using var pool = new GeneratorPool(models.Stories, maxSize: 2, keepCaches: true);
        int[] a = [1, 403, 407, 500], b = [1, 300, 301, 302];
        var first = await pool.RentAsync(a);
        var second = await pool.RentAsync(b);
        first.Generator.Prefill(a);
        second.Generator.Prefill(b);
        var (ga, gb) = (first.Generator, second.Generator);
        first.Dispose();
        second.Dispose();

        using var again = await pool.RentAsync([1, 403, 407, 9]);
        Assert.Same(ga, again.Generator);
        Assert.Equal(a.Length, again.Generator.Position);   // returned with its cache
        using var other = await pool.RentAsync([1, 300, 5]);
        Assert.Same(gb, other.Generator);
        Assert.Equal(2, pool.Created);
    }

    [Fact]
    public void BatchGenerate_keeps_input_order_reports_progress_and_varies_seeds_reproducibly()
    {
        var prompts = Openings.Take(6).ToArray();
        var options = new GenerationOptions { MaxTokens = 12, Sampling = new SamplingOptions { Temperature = 1f, Seed = 77 } };
        var batch = new BatchOptions { MaxDegreeOfParallelism = 3, VarySeedPerItem = true };
        var reports = new System.Collections.Concurrent.ConcurrentBag<int>();
        var progress = new SynchronousProgress(reports.Add);

        var first = models.Stories.BatchGenerate(prompts, options, batch, progress);
        var second = models.Stories.BatchGenerate(prompts, options, batch);
        Assert.Equal(prompts.Length, first.Length);
        Assert.Equal(Enumerable.Range(1, prompts.Length), reports.OrderBy(x => x));
        for (int i = 0; i < prompts.Length; i++)
        {
            Assert.Equal(models.Stories.Tokenizer.Encode(prompts[i]), first[i].PromptTokens);
            Assert.Equal(first[i].GeneratedTokens, second[i].GeneratedTokens);
            var alone = Solo(models.Stories, prompts[i], options with { Sampling = options.Sampling! with { Seed = 77 + (ulong)i } });
            Assert.Equal(alone, first[i].GeneratedTokens);
        }
    }

    private sealed class SynchronousProgress(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
