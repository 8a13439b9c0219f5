using ManagedLM.Batching;
using ManagedLM.Embeddings;
using ManagedLM.Model;
using ManagedLM.Tests.Embeddings;

namespace ManagedLM.Tests.Batching;

/// <summary>The embedding engine: bad sequences refused on the submitting thread, good ones the embedder's bits.</summary>
public class EmbeddingEngineTests
{
    [Fact]
    public async Task Bad_sequences_are_argument_errors_and_the_engine_goes_on()
    {
        using var model = BertFixture.Load();
        using var engine = new EmbeddingEngine(model, EmbeddingEngineOptions.Default with { Threads = 1, BatchTokens = 64 });
        Assert.Throws<ArgumentException>(() => { _ = engine.EmbedAsync([]); });
        Assert.Throws<ArgumentException>(() => { _ = engine.EmbedAsync([[]]); });
        Assert.Throws<ArgumentException>(() => { _ = engine.EmbedAsync([[101, 30522]]); });
        Assert.Throws<ArgumentException>(() => { _ = engine.EmbedAsync([[101, -1]]); });
        Assert.Throws<ArgumentException>(() => { _ = engine.EmbedAsync([[101], null!]); });
        Assert.Throws<ArgumentException>(() => { _ = engine.EmbedAsync([Enumerable.Repeat(1000, 65).ToArray()]); });

        int[] tokens = BertFixture.Reference.Texts[0].Tokens;
        using var embedder = model.CreateEmbedder();
        var expected = new float[embedder.Dimensions];
        embedder.Embed(tokens, expected);
        Assert.Equal(expected, (await engine.EmbedAsync([tokens]))[0]);
    }

    [Fact]
    public void None_pooling_is_refused_and_a_disposed_engine_says_so()
    {
        using var model = BertFixture.Load();
        var engine = new EmbeddingEngine(model, EmbeddingEngineOptions.Default with { Threads = 1, Pooling = PoolingType.None });
        Assert.Throws<InvalidOperationException>(() => { _ = engine.EmbedAsync([[101, 102]]); });
        engine.Dispose();
        Assert.Throws<ObjectDisposedException>(() => { _ = engine.EmbedAsync([[101, 102]]); });
    }
}
