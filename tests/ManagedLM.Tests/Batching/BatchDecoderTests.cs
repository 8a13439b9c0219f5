using ManagedLM.Batching;
using ManagedLM.Generation;
using ManagedLM.Inference;
using ManagedLM.Model;
using ManagedLM.Sampling;

namespace ManagedLM.Tests.Batching;

/// <summary>One forward pass over several generators gives each exactly its solo logits.</summary>
public class BatchDecoderTests
{
    [Theory]
    [InlineData("stories260K.gguf", 1)]
    [InlineData("stories260K.gguf", 2)]
    [InlineData("synthetic/synth-llama-Q4_K_M.gguf", 2)]
    [InlineData("synthetic/synth-qwen2-Q4_K_M.gguf", 1)]
    [InlineData("stories260K-mix-Q4_0.gguf", 2)]
    [InlineData("synthetic/synth-gemma2-Q8_0.gguf", 2)]
    [InlineData("synthetic/synth-gemma3-Q8_0.gguf", 1)]
    [InlineData("synthetic/synth-qwen3moe-Q8_0.gguf", 2)]
    [InlineData("synthetic/synth-phi3-longrope-Q8_0.gguf", 1)]
    public void A_step_mixing_prompt_chunks_and_decode_tokens_equals_each_generator_alone(string file, int threads) =>
        MixedStepEqualsAlone(file, threads, KvCacheType.F16, KvCacheType.F16, KvCacheType.F16);

    [Theory]
    [InlineData("stories260K.gguf", 2, KvCacheType.Q8_0)]
    [InlineData("synthetic/synth-llama-Q4_K_M.gguf", 2, KvCacheType.Q8_0)]
    [InlineData("synthetic/synth-qwen2-Q4_K_M.gguf", 1, KvCacheType.Q4_0)]
    public void A_mixed_step_over_quantized_caches_equals_each_generator_alone(string file, int threads, KvCacheType type) =>
        MixedStepEqualsAlone(file, threads, type, type, type);

    [Fact]
    public void Caches_of_different_types_share_a_step() =>
        MixedStepEqualsAlone("synthetic/synth-llama-Q4_K_M.gguf", 2, KvCacheType.Q4_0, KvCacheType.F16, KvCacheType.Q8_0);

    // Three generators (cache types as given), with histories, then one step of a decode token and two prompt chunks.
    private static void MixedStepEqualsAlone(string file, int threads, params KvCacheType[] types)
    {
        using var model = TransformerModel.Load(TestData.Model(file));
        int vocab = model.Config.VocabSize;
        int[][] histories = [Tokens(5, 3, vocab), Tokens(17, 7, vocab), Tokens(1, 11, vocab)];
        int[][] next = [Tokens(1, 13, vocab), Tokens(9, 17, vocab), Tokens(30, 19, vocab)];

        var expected = new float[3][];
        for (int i = 0; i < 3; i++)
        {
            using var solo = model.CreateGenerator(new GeneratorOptions { KvCacheType = types[i], Sampling = SamplingOptions.Greedy });
            solo.Prefill(histories[i]);
            expected[i] = solo.Prefill(next[i]).ToArray();
        }

        var generators = Enumerable.Range(0, 3).Select(i => model.CreateGenerator(new GeneratorOptions { KvCacheType = types[i], Sampling = SamplingOptions.Greedy })).ToArray();
        using var decoder = new BatchDecoder(model, threads);
        for (int i = 0; i < 3; i++)
            generators[i].Prefill(histories[i]);
        decoder.Decode([.. Enumerable.Range(0, 3).Select(i => new BatchItem(generators[i], next[i]))]);
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(expected[i], generators[i].Logits.ToArray());
            Assert.Equal(histories[i].Concat(next[i]), generators[i].Tokens);
            generators[i].Dispose();
        }
    }

    [Fact]
    public void Bad_steps_are_refused_before_anything_runs()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var other = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var decoder = new BatchDecoder(model, 1);
        using var g = model.CreateGenerator(new GeneratorOptions { ContextLength = 8 });
        using var stranger = other.CreateGenerator();
        Assert.Throws<ArgumentException>(() => decoder.Decode([new BatchItem(g, new[] { 1 }), new BatchItem(g, new[] { 2 })]));
        Assert.Throws<ArgumentException>(() => decoder.Decode([new BatchItem(stranger, new[] { 1 })]));
        Assert.Throws<ArgumentException>(() => decoder.Decode([new BatchItem(g, Array.Empty<int>())]));
        Assert.Throws<ArgumentException>(() => decoder.Decode([new BatchItem(g, new[] { 100000 })]));
        Assert.Throws<ArgumentException>(() => decoder.Decode([new BatchItem(g, new int[9])]));
        Assert.Equal(0, g.Position);
    }

    [Fact]
    public async Task A_generator_busy_elsewhere_is_refused()
    {
        using var model = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var decoder = new BatchDecoder(model, 1);
        using var g = model.CreateGenerator();
        await using var stream = g.GenerateStreamingAsync("Once upon a time").GetAsyncEnumerator();
        await stream.MoveNextAsync();
        Assert.Throws<InvalidOperationException>(() => decoder.Decode([new BatchItem(g, new[] { 1 })]));
    }

    private static int[] Tokens(int count, int seed, int vocab) => Enumerable.Range(0, count).Select(i => (i * 97 + seed * 31) % vocab).ToArray();
}
