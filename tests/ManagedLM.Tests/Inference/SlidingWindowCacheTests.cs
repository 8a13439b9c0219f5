using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Kernels;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Inference;

/// <summary>
/// Sliding-window layers keep only their window (gemma2/gemma3 fixtures: window 8 on layer 0): less memory, and the same
/// bits as a cache that keeps everything, through compaction, chunked prefill, rewinds, saved state and forks.
/// </summary>
public class SlidingWindowCacheTests
{
    private static readonly int[] Tokens = [.. Enumerable.Range(0, 150).Select(i => (i * 131 + 7) % 512)];

    // Logits after each of `count` tokens, one token per pass, over a cache with or without the model's windows.
    private static float[][] Run(TransformerModel model, bool windows, int count, int batch = 1)
    {
        var c = model.Config;
        var cache = new KvCache(KvCacheType.F16, c.BlockCount, new KvBlockLayout(c.KvHeadCount, c.HeadDim), 256, 16,
            windows ? c.LayerWindows.AsSpan() : default);
        var state = new ForwardState(c, pool: null, rows: batch);
        var logits = new List<float[]>();
        for (int start = 0; start < count; start += batch)
        {
            int n = Math.Min(batch, count - start);
            cache.EnsureCapacity(start + n);
            for (int i = 0; i < n; i++)
                state.Rows[i] = new ForwardRow(cache, Tokens[start + i], start + i, Logits: i == n - 1);
            Transformer.Forward(model, state, n);
            logits.Add(state.Logits.AsSpan(0, c.VocabSize).ToArray());
        }
        return [.. logits];
    }

    [Theory]
    [InlineData("synthetic/synth-gemma2-Q8_0.gguf")]
    [InlineData("synthetic/synth-gemma3-Q8_0.gguf")]
    public void A_windowed_cache_gives_the_bits_of_a_full_cache_as_it_drops_blocks(string file)
    {
        using var model = TransformerModel.Load(TestData.Model(file));
        float[][] full = Run(model, windows: false, 150), windowed = Run(model, windows: true, 150);
        for (int i = 0; i < full.Length; i++)
            Assert.Equal(full[i], windowed[i]);
        // Chunks of 7 rows (each spanning a compaction now and then): the logits after each chunk's last row.
        float[][] chunked = Run(model, windows: true, 150, batch: 7);
        for (int i = 0; i < chunked.Length; i++)
            Assert.Equal(full[Math.Min(150, 7 * (i + 1)) - 1], chunked[i]);
    }

    [Fact]
    public void The_sliding_layer_holds_a_window_and_the_global_layer_everything()
    {
        using var model = TransformerModel.Load(TestData.Model("synthetic/synth-gemma3-Q8_0.gguf"));
        Assert.Equal([8, 0], model.Config.LayerWindows.ToArray());
        using var g = model.CreateGenerator(new GeneratorOptions { ContextLength = 256, Sampling = SamplingOptions.Greedy });
        g.Prefill(Tokens.AsSpan(0, 140));
        Assert.True(g.Cache.HeldFrom(0) >= 140 - 8 - 32, $"layer 0 holds from {g.Cache.HeldFrom(0)}");
        Assert.Equal(0, g.Cache.HeldFrom(1));
        var c = model.Config;
        var full = new KvCache(KvCacheType.F16, c.BlockCount, new KvBlockLayout(c.KvHeadCount, c.HeadDim), 256);
        full.EnsureCapacity(140);
        Assert.True(g.KvCacheBytes < full.AllocatedBytes * 3 / 4, $"{g.KvCacheBytes} bytes against {full.AllocatedBytes} for full layers");
    }

    [Fact]
    public void Rewinding_past_what_the_window_kept_evaluates_the_kept_tokens_again()
    {
        using var model = TransformerModel.Load(TestData.Model("synthetic/synth-gemma2-Q8_0.gguf"));
        var options = new GeneratorOptions { ContextLength = 256, Sampling = SamplingOptions.Greedy };
        using var g = model.CreateGenerator(options);
        g.Prefill(Tokens.AsSpan(0, 120));
        g.Rewind(100);
        Assert.True(g.Cache.Holds(20));
        using var fresh = model.CreateGenerator(options);
        fresh.Prefill(Tokens.AsSpan(0, 20));
        Assert.Equal(fresh.Step(5).ToArray(), g.Step(5).ToArray());
    }

    [Fact]
    public void Saved_state_and_forks_of_a_windowed_cache_continue_with_the_same_bits()
    {
        using var model = TransformerModel.Load(TestData.Model("synthetic/synth-gemma3-Q8_0.gguf"));
        var options = new GeneratorOptions { ContextLength = 256, Sampling = SamplingOptions.Greedy };
        using var g = model.CreateGenerator(options);
        g.Prefill(Tokens.AsSpan(0, 100));
        using var stream = new MemoryStream();
        g.SaveState(stream);
        using var fork = g.Fork();
        float[] expected = g.Step(9).ToArray();
        stream.Position = 0;
        using var loaded = model.CreateGenerator(options);
        loaded.LoadState(stream);
        Assert.Equal(expected, loaded.Step(9).ToArray());
        Assert.Equal(expected, fork.Step(9).ToArray());
    }
}
