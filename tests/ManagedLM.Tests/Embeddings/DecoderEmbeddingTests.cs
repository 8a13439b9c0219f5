using ManagedLM.Embeddings;
using ManagedLM.Generation;
using ManagedLM.Gguf;
using ManagedLM.Inference;
using ManagedLM.Model;
using ManagedLM.Sampling;
using ManagedLM.Tests.Model;

namespace ManagedLM.Tests.Embeddings;

/// <summary>
/// A decoder as an embedder: its causal pass without the output projection. The last token's vector is the final-norm
/// hidden state the generator's logits come from (the same bits: projecting it gives the generator's logits), the mean
/// is the mean of every prefix's last vector, and packing, passes and threads change nothing.
/// </summary>
public class DecoderEmbeddingTests
{
    public static TheoryData<string> Models => new() { "stories260K.gguf", "synthetic/synth-qwen3-Q4_K_M.gguf" };

    private static int[] Prompt(TransformerModel model, int length, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, length).Select(i => i == 0 && model.Tokenizer.BosTokenId >= 0 ? model.Tokenizer.BosTokenId : random.Next(3, model.Config.VocabSize))];
    }

    private static float[] Alone(Embedder embedder, int[] tokens)
    {
        var v = new float[embedder.Dimensions];
        embedder.Embed(tokens, v);
        return v;
    }

    // The model's logits from a final-norm hidden state, as the forward pass projects it.
    private static float[] Logits(TransformerModel model, float[] hidden)
    {
        var c = model.Config;
        var s = new ForwardState(c, pool: null, rows: 1, logitRows: 1);
        s.Input.Set(hidden, c.EmbeddingLength, 1, c.EmbeddingLength);
        Transformer.Project(s, model.Weights.Output, s.Logits, c.VocabSize, default);
        return s.Logits[..c.VocabSize];
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void The_last_tokens_vector_is_the_hidden_state_the_generators_logits_come_from(string file)
    {
        using var model = TransformerModel.Load(TestData.Model(file));
        Assert.Equal(PoolingType.Last, model.Config.Pooling);
        using var embedder = model.CreateEmbedder(new EmbedderOptions { Normalize = false });
        Assert.Equal((PoolingType.Last, model.Config.EmbeddingLength), (embedder.Pooling, embedder.Dimensions));
        foreach (int length in new[] { 1, 9, 40 })
        {
            var tokens = Prompt(model, length, seed: length);
            var hidden = Alone(embedder, tokens);
            using var generator = model.CreateGenerator(new GeneratorOptions { Sampling = SamplingOptions.Greedy });
            Assert.Equal(generator.Prefill(tokens).ToArray(), Logits(model, hidden));
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void The_mean_is_the_mean_of_every_prefixs_last_vector(string file)
    {
        using var model = TransformerModel.Load(TestData.Model(file));
        using var last = model.CreateEmbedder(new EmbedderOptions { Normalize = false });
        using var mean = model.CreateEmbedder(new EmbedderOptions { Pooling = PoolingType.Mean, Normalize = false });
        using var first = model.CreateEmbedder(new EmbedderOptions { Pooling = PoolingType.Cls, Normalize = false });
        var tokens = Prompt(model, 23, seed: 4);
        var expected = new float[model.Config.EmbeddingLength];
        var rows = mean.TokenEmbeddings(tokens);
        for (int t = 1; t <= tokens.Length; t++)
        {
            var prefix = Alone(last, tokens[..t]);
            Assert.Equal(prefix, Enumerable.Range(0, prefix.Length).Select(d => rows[t - 1, d]).ToArray());
            for (int d = 0; d < expected.Length; d++)
                expected[d] = MathF.FusedMultiplyAdd(prefix[d], 1f / tokens.Length, expected[d]);
        }
        Assert.Equal(expected, Alone(mean, tokens));
        Assert.Equal(Alone(last, tokens[..1]), Alone(first, tokens));
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void Packing_passes_and_threads_give_the_bits_of_one_by_one_embedding(string file)
    {
        using var model = TransformerModel.Load(TestData.Model(file));
        var random = new Random(7);
        // More sequences than a decoder pass packs (16), of lengths that reorder the caches' slots from pass to pass.
        var sequences = Enumerable.Range(0, 45).Select(i => Prompt(model, random.Next(1, 50), seed: 100 + i)).ToArray();
        foreach (var pooling in new[] { PoolingType.Last, PoolingType.Mean })
        {
            float[][] expected;
            using (var single = model.CreateEmbedder(new EmbedderOptions { Pooling = pooling }))
                expected = [.. sequences.Select(s => Alone(single, s))];
            foreach (var options in new[]
            {
                new EmbedderOptions { Pooling = pooling },
                new EmbedderOptions { Pooling = pooling, BatchTokens = 60, Threads = 2 },
                new EmbedderOptions { Pooling = pooling, Threads = 4 },
            })
            {
                using var packed = model.CreateEmbedder(options);
                var vectors = packed.EmbedTokens(sequences);
                for (int i = 0; i < sequences.Length; i++)
                    Assert.Equal(expected[i], vectors[i]);
            }
        }
    }

    [Fact]
    public void Embedding_into_a_buffer_allocates_nothing()
    {
        using var model = TransformerModel.Load(TestData.Model("synthetic/synth-qwen3-Q4_K_M.gguf"));
        using var embedder = model.CreateEmbedder();
        var tokens = Prompt(model, 30, seed: 8);
        var destination = new float[embedder.Dimensions];
        embedder.Embed(tokens, destination);
        Assert.Equal(0, Allocations.Fewest(() => embedder.Embed(tokens, destination)));
        Assert.Equal(1.0, Math.Sqrt(destination.Sum(x => (double)x * x)), 5);
    }

    [Fact]
    public void The_files_pooling_type_is_the_default_and_a_non_causal_decoder_is_refused()
    {
        using var mean = TransformerModel.Load(ModelBytes.Stories(m => ModelBytes.Set(m, "llama.pooling_type", GgufValue.Of(1u))));
        Assert.Equal(PoolingType.Mean, mean.Config.Pooling);
        using (var embedder = mean.CreateEmbedder())
            Assert.Equal(PoolingType.Mean, embedder.Pooling);
        using var bidirectional = TransformerModel.Load(ModelBytes.Stories(m => ModelBytes.Set(m, "llama.attention.causal", GgufValue.Of(false))));
        Assert.False(bidirectional.Config.CausalAttention);
        Assert.Throws<NotSupportedException>(() => bidirectional.CreateEmbedder());
        using var stories = TransformerModel.Load(TestData.Model("stories260K.gguf"));
        using var plain = stories.CreateEmbedder();
        Assert.Throws<ArgumentException>(() => stories.CreateEmbedder(new EmbedderOptions { Pooling = PoolingType.Rank }));
        var vector = plain.Embed("Once upon a time");
        Assert.Equal(stories.Tokenizer.Encode("Once upon a time").Length, plain.LastTokenCount);
        Assert.Equal(vector, plain.Embed(["Tom had a ball", "Once upon a time"])[1]);
        Assert.Equal(stories.Tokenizer.Encode("Tom had a ball").Length + stories.Tokenizer.Encode("Once upon a time").Length, plain.LastTokenCount);
    }
}
