using ManagedLM.Embeddings;
using ManagedLM.Model;
using Microsoft.Extensions.AI;

namespace ManagedLM.Tests.Embeddings;

/// <summary><see cref="ModelEmbeddingGenerator"/> as Microsoft.Extensions.AI code uses it: vectors, usage, dimensions, metadata, concurrency.</summary>
public sealed class ModelEmbeddingGeneratorTests : IDisposable
{
    private readonly TransformerModel _model = BertFixture.Load();

    public void Dispose() => _model.Dispose();

    private static readonly string[] Texts = [.. BertFixture.Reference.Texts.Select(t => t.Text)];

    [Fact]
    public async Task Vectors_and_usage_are_the_embedders()
    {
        using IEmbeddingGenerator<string, Embedding<float>> generator = new ModelEmbeddingGenerator(_model);
        var result = await generator.GenerateAsync(Texts);
        using var embedder = _model.CreateEmbedder();
        Assert.Equal(Texts.Length, result.Count);
        for (int i = 0; i < Texts.Length; i++)
        {
            Assert.Equal(embedder.Embed(Texts[i]), result[i].Vector.ToArray());
            Assert.Equal("synth-bert-Q8_0", result[i].ModelId);
        }
        Assert.Equal(BertFixture.Reference.Texts.Sum(t => t.Tokens.Length), result.Usage!.InputTokenCount);
        Assert.Empty(await generator.GenerateAsync([]));
    }

    [Fact]
    public async Task Dimensions_keep_the_first_values_renormalized_and_out_of_range_is_an_argument_error()
    {
        using var generator = new ModelEmbeddingGenerator(_model);
        var full = (await generator.GenerateAsync([Texts[1]]))[0].Vector.ToArray();
        var shortened = (await generator.GenerateAsync([Texts[1]], new EmbeddingGenerationOptions { Dimensions = 10 }))[0].Vector.ToArray();
        Assert.Equal(10, shortened.Length);
        Assert.Equal(1.0, Math.Sqrt(shortened.Sum(x => (double)x * x)), 5);
        double scale = shortened[0] / full[0];
        for (int i = 0; i < 10; i++)
            Assert.Equal(full[i] * scale, shortened[i], 5);
        await Assert.ThrowsAsync<ArgumentException>(() => generator.GenerateAsync(["x"], new EmbeddingGenerationOptions { Dimensions = 33 }));
    }

    [Fact]
    public async Task Metadata_services_and_concurrent_calls()
    {
        using var generator = new ModelEmbeddingGenerator(_model, new ModelEmbeddingGeneratorOptions { ModelId = "bge", MaxConcurrentCalls = 3 });
        var metadata = generator.GetService<EmbeddingGeneratorMetadata>()!;
        Assert.Equal(("managedlm", "bge", 32), (metadata.ProviderName, metadata.DefaultModelId, metadata.DefaultModelDimensions));
        Assert.Same(_model, generator.GetService<TransformerModel>());
        Assert.Same(generator, generator.GetService<IEmbeddingGenerator<string, Embedding<float>>>());
        Assert.Null(generator.GetService<TransformerModel>("key"));

        using var embedder = _model.CreateEmbedder();
        var expected = Texts.Select(embedder.Embed).ToArray();
        var calls = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => generator.GenerateAsync([Texts[i % Texts.Length]])));
        for (int i = 0; i < calls.Length; i++)
            Assert.Equal(expected[i % Texts.Length], calls[i][0].Vector.ToArray());
    }

    [Fact]
    public void None_pooling_cannot_make_a_generator()
    {
        Assert.Throws<ArgumentException>(() => new ModelEmbeddingGenerator(_model,
            new ModelEmbeddingGeneratorOptions { Embedder = new EmbedderOptions { Pooling = PoolingType.None } }));
    }
}
