using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Generation;

/// <summary>A prompt evaluated in chunks (one forward pass per chunk) gives exactly the logits of one token at a time.</summary>
public class BatchedPrefillTests
{
    public static TheoryData<string, int> Cases => new()
    {
        { "stories260K.gguf", 1 }, { "stories260K.gguf", 2 },
        { "stories260K-F16.gguf", 1 }, { "stories260K-mix-Q4_0.gguf", 2 }, { "stories260K-mix-Q8_0.gguf", 1 },
        { "synthetic/synth-llama-Q4_K_M.gguf", 1 }, { "synthetic/synth-llama-Q6_K.gguf", 2 },
        { "synthetic/synth-qwen2-Q4_K_M.gguf", 1 }, { "synthetic/synth-qwen3-Q4_K_M.gguf", 2 },
        // Sliding windows and soft-caps, local RoPE, fused projections, longrope, experts routed per row, YaRN.
        { "synthetic/synth-gemma2-Q8_0.gguf", 2 }, { "synthetic/synth-gemma3-Q8_0.gguf", 1 }, { "synthetic/synth-phi3-Q8_0.gguf", 2 },
        { "synthetic/synth-phi3-longrope-Q8_0.gguf", 1 }, { "synthetic/synth-qwen3moe-Q8_0.gguf", 2 }, { "synthetic/synth-llama-yarn-Q8_0.gguf", 1 },
        { "synthetic/synth-granite-Q8_0.gguf", 2 },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Chunked_prefill_equals_stepping_token_by_token(string file, int threads) => ChunkedEqualsStepped(file, threads, KvCacheType.F16);

    /// <summary>Head dims 8 (four heads share a quant block), 64 and 128 (one KV head).</summary>
    public static TheoryData<string, int, KvCacheType> QuantizedCases => new()
    {
        { "stories260K.gguf", 1, KvCacheType.Q8_0 }, { "stories260K-mix-Q4_0.gguf", 2, KvCacheType.Q4_0 },
        { "synthetic/synth-llama-Q4_K_M.gguf", 2, KvCacheType.Q8_0 }, { "synthetic/synth-qwen2-Q4_K_M.gguf", 1, KvCacheType.Q4_0 },
        { "synthetic/synth-qwen3-Q4_K_M.gguf", 2, KvCacheType.Q8_0 },
        // Soft-caps and sliding windows; two threads split gemma3's pair of heads, one each.
        { "synthetic/synth-gemma2-Q8_0.gguf", 2, KvCacheType.Q8_0 }, { "synthetic/synth-gemma3-Q8_0.gguf", 2, KvCacheType.Q4_0 },
    };

    [Theory]
    [MemberData(nameof(QuantizedCases))]
    public void Chunked_prefill_equals_stepping_token_by_token_over_a_quantized_cache(string file, int threads, KvCacheType type) =>
        ChunkedEqualsStepped(file, threads, type);

    private static void ChunkedEqualsStepped(string file, int threads, KvCacheType type)
    {
        using var model = TransformerModel.Load(TestData.Model(file));
        int[] prompt = Enumerable.Range(0, 37).Select(i => (i * 131 + 7) % model.Config.VocabSize).ToArray();

        using var stepper = model.CreateGenerator(new GeneratorOptions { Threads = threads, KvCacheType = type, Sampling = SamplingOptions.Greedy });
        var stepped = new List<float[]>();
        foreach (int t in prompt)
            stepped.Add(stepper.Step(t).ToArray());
        float[] after = stepper.Step(5).ToArray();

        foreach (int batch in new[] { 3, 16, 64 })
        {
            using var g = model.CreateGenerator(new GeneratorOptions { Threads = threads, BatchSize = batch, KvCacheType = type, Sampling = SamplingOptions.Greedy });
            Assert.Equal(stepped[^1], g.Prefill(prompt).ToArray());
            Assert.Equal(after, g.Step(5).ToArray());
            // A second prefill continues from the cached positions: drop the step and the last 20 prompt tokens, then redo them.
            g.Rewind(21);
            Assert.Equal(stepped[^1], g.Prefill(prompt.AsSpan(prompt.Length - 20)).ToArray());
        }
    }

    [Fact]
    public void BatchSize_must_be_positive()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.CreateGenerator(new GeneratorOptions { BatchSize = 0 }));
    }
}
