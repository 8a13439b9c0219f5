using ManagedLM.Generation;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Concurrency;

/// <summary>The runtime guard: overlapping use of one generator throws, sequential hand-off does not.</summary>
public class GuardTests(SharedModels models) : IClassFixture<SharedModels>
{
    [Fact]
    public void Forced_overlap_throws_every_time_and_names_the_fix()
    {
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
        for (int attempt = 0; attempt < 50; attempt++)
        {
            using var inside = new ManualResetEventSlim();
            using var tried = new ManualResetEventSlim();
            Exception? seen = null;
            var other = new Thread(() =>
            {
                inside.Wait();
                seen = Record.Exception(() => g.Step(5));
                tried.Set();
            });
            other.Start();
            g.Complete([1, 403], new GenerationOptions { MaxTokens = 2 }, onToken: _ =>
            {
                inside.Set();
                tried.Wait(); // the generator is busy until this callback returns
            });
            other.Join();
            var ex = Assert.IsType<InvalidOperationException>(seen);
            Assert.Contains("model.CreateGenerator", ex.Message);
            Assert.Contains("GeneratorPool", ex.Message);
        }
    }

    [Fact]
    public async Task Sequential_hand_off_between_threads_never_throws()
    {
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
        using var reference = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
        reference.Prefill([1, 403]);
        await Task.Run(() => g.Prefill([1, 403]));
        for (int i = 0; i < 50; i++)
        {
            int next = await Task.Run(() => g.Sample());
            await Task.Yield();
            float[] logits = await Task.Run(() => g.Step(next).ToArray());
            Assert.Equal(reference.Step(reference.Sample()).ToArray(), logits);
        }
    }

    [Fact]
    public async Task A_streaming_enumeration_holds_the_generator_until_disposed()
    {
        using var g = models.Stories.CreateGenerator();
        var stream = g.GenerateStreamingAsync("Once upon a time", new GenerationOptions { MaxTokens = 20 });
        var e = stream.GetAsyncEnumerator();
        Assert.True(await e.MoveNextAsync());
        Assert.Throws<InvalidOperationException>(() => g.Step(3));
        Assert.Throws<InvalidOperationException>(() => g.Complete("Hi"));
        await e.DisposeAsync();
        g.Step(3);
        Assert.Equal(StopReason.MaxTokens, g.Complete("Once", new GenerationOptions { MaxTokens = 3 }).StopReason);
    }

    [Fact]
    public async Task Concurrent_async_calls_on_one_generator_fail_cleanly()
    {
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
        string expected = g.Generate("Once upon a time", new GenerationOptions { MaxTokens = 40 });
        using var gate = new ManualResetEventSlim();
        using var inside = new ManualResetEventSlim();
        var holding = Task.Run(() => g.Complete("Once upon a time", new GenerationOptions { MaxTokens = 40 }, _ =>
        {
            inside.Set();
            gate.Wait();
        }));
        inside.Wait(); // the first call is inside the generator
        var second = g.GenerateAsync("The dog", new GenerationOptions { MaxTokens = 5 });
        await Assert.ThrowsAsync<InvalidOperationException>(() => second);
        gate.Set();
        Assert.Equal(expected, (await holding).Text);
    }
}
