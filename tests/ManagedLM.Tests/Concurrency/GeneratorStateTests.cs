using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Concurrency;

/// <summary>Fork, Rewind/Trim and SaveState/LoadState reproduce the same continuation.</summary>
public class GeneratorStateTests(SharedModels models) : IClassFixture<SharedModels>
{
    private static readonly int[] Prompt = [1, 403, 407, 261, 378];
    private static readonly SamplingOptions Sampled = new() { Temperature = 1f, TopK = 0, TopP = 1, MinP = 0, Seed = 21 };

    private static int[] Continue(Generator g, int count)
    {
        var ids = new int[count];
        for (int i = 0; i < count; i++)
        {
            ids[i] = g.Sample();
            g.Step(ids[i]);
        }
        return ids;
    }

    [Fact]
    public void Fork_continues_exactly_like_the_original_and_leaves_it_alone()
    {
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = Sampled });
        g.Prefill(Prompt);
        Continue(g, 4);
        using var fork = g.Fork();
        Assert.Equal(g.Tokens, fork.Tokens);
        Assert.Equal(g.Logits.ToArray(), fork.Logits.ToArray());
        var fromFork = Continue(fork, 20);
        Assert.Equal(fromFork, Continue(g, 20));

        using var greedyFork = g.Fork(SamplingOptions.Greedy);
        Assert.Equal(SamplingOptions.Greedy, greedyFork.Sampler.Options);
    }

    [Fact]
    public void Fork_into_an_f32_cache_generator_keeps_the_continuation_close()
    {
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
        g.Prefill(Prompt);
        using var fork = g.Fork();
        Assert.Equal(Continue(g, 16), Continue(fork, 16));
    }

    [Fact]
    public void Rewind_and_stepping_the_same_tokens_again_gives_the_same_logits()
    {
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
        g.Prefill(Prompt);
        var ids = Continue(g, 10);
        float[] logits = g.Logits.ToArray();
        g.Rewind(4);
        Assert.Equal(Prompt.Length + 6, g.Position);
        Assert.True(g.Logits.IsEmpty);
        Assert.Throws<InvalidOperationException>(() => g.Sample());
        foreach (int id in ids[6..])
            g.Step(id);
        Assert.Equal(logits, g.Logits.ToArray());

        g.Trim(Prompt.Length);
        Assert.Equal(Prompt, g.Tokens);
        Assert.Throws<ArgumentOutOfRangeException>(() => g.Trim(Prompt.Length + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => g.Rewind(Prompt.Length + 1));
    }

    [Theory]
    [InlineData(KvCacheType.F16, KvCacheType.F16)]
    [InlineData(KvCacheType.F32, KvCacheType.F32)]
    [InlineData(KvCacheType.F32, KvCacheType.F16)]
    [InlineData(KvCacheType.Q8_0, KvCacheType.Q8_0)]
    [InlineData(KvCacheType.Q4_0, KvCacheType.Q4_0)]
    [InlineData(KvCacheType.F32, KvCacheType.Q8_0)]
    [InlineData(KvCacheType.Q8_0, KvCacheType.F16)]
    public void Saved_state_loads_into_a_new_generator_and_continues_the_same(KvCacheType savedType, KvCacheType loadedType)
    {
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = Sampled, KvCacheType = savedType });
        g.Prefill(Prompt);
        Continue(g, 5);
        using var stream = new MemoryStream();
        g.SaveState(stream);
        var expected = Continue(g, 20);

        using var loaded = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = Sampled, KvCacheType = loadedType });
        loaded.Prefill([1, 2, 3]); // replaced by the load
        stream.Position = 0;
        loaded.LoadState(stream);
        Assert.Equal(Prompt.Length + 5, loaded.Position);
        if (savedType == loadedType)
            Assert.Equal(expected, Continue(loaded, 20));
        else
            Assert.Equal(expected[..3], Continue(loaded, 20)[..3]); // F32 → F16 rounds the cache: sampled paths may part later
    }

    [Theory]
    [InlineData(KvCacheType.Q8_0)]
    [InlineData(KvCacheType.Q4_0)]
    public void A_quantized_cache_saves_its_blocks_and_loads_them_back_bit_for_bit(KvCacheType type)
    {
        using var g = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy, KvCacheType = type });
        g.Prefill(Prompt);
        Continue(g, 30); // past a block of 16 positions
        using var stream = new MemoryStream();
        g.SaveState(stream);
        // 5 layers × (keys, values) × 35 positions × one 32-value block (Q8_0 34 bytes, Q4_0 18) after the header.
        int block = type == KvCacheType.Q8_0 ? 34 : 18;
        using (var f16 = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy }))
        {
            f16.Prefill(Prompt);
            Continue(f16, 30);
            using var f16Stream = new MemoryStream();
            f16.SaveState(f16Stream);
            Assert.Equal(f16Stream.Length - 5 * 2 * 35 * (64 - block), stream.Length);
        }
        float[] next = g.Step(7).ToArray();

        using var loaded = models.Stories.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy, KvCacheType = type });
        stream.Position = 0;
        loaded.LoadState(stream);
        Assert.Equal(g.Tokens.Take(35), loaded.Tokens);
        Assert.Equal(next, loaded.Step(7).ToArray());
        // Fork copies the blocks too.
        using var fork = loaded.Fork();
        Assert.Equal(Continue(loaded, 10), Continue(fork, 10));
    }

    [Fact]
    public void Bad_state_is_refused_and_leaves_the_generator_unchanged()
    {
        using var g = models.Stories.CreateGenerator();
        g.Prefill(Prompt);
        using var saved = new MemoryStream();
        g.SaveState(saved);
        byte[] bytes = saved.ToArray();

        using var target = models.Stories.CreateGenerator();
        target.Prefill([1, 2]);
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => target.LoadState(new MemoryStream(bytes[..^40]))).Message);
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => target.LoadState(new MemoryStream(new byte[64]))).Message);
        byte[] future = (byte[])bytes.Clone();
        future[8] = 99;
        Assert.Contains("version 99", Assert.Throws<InvalidDataException>(() => target.LoadState(new MemoryStream(future))).Message);
        Assert.Equal(new[] { 1, 2 }, target.Tokens);

        using var other = models.Gpt2Vocab.CreateGenerator();
        Assert.Contains("different model", Assert.Throws<InvalidDataException>(() => other.LoadState(new MemoryStream(bytes))).Message);

        using var small = models.Stories.CreateGenerator(new GeneratorOptions { ContextLength = 3 });
        Assert.Contains("context length is 3", Assert.Throws<ArgumentException>(() => small.LoadState(new MemoryStream(bytes))).Message);
    }
}
