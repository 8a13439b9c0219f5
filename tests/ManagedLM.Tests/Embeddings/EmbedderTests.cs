using ManagedLM.Embeddings;
using ManagedLM.Generation;
using ManagedLM.Model;

namespace ManagedLM.Tests.Embeddings;

/// <summary>
/// The embedder on the BERT fixture: a text's vector is the same bits alone, packed with others in one pass, split over
/// passes, and on any number of threads; embedders share the model without locks; a shared embedder is caught; the hot
/// path allocates nothing; bad input gets a clear exception.
/// </summary>
public class EmbedderTests : IClassFixture<EmbedderTests.Bert>
{
    /// <summary>The fixture loaded once for these tests.</summary>
    public sealed class Bert : IDisposable
    {
        public TransformerModel Model { get; } = BertFixture.Load();
        public void Dispose() => Model.Dispose();
    }

    private readonly TransformerModel _model;

    public EmbedderTests(Bert bert) => _model = bert.Model;

    private static int[][] ReferenceTokens => [.. BertFixture.Reference.Texts.Select(t => t.Tokens)];

    // Random texts as ids: [CLS], 1 to maxWords ordinary ids, [SEP].
    private static int[][] RandomSequences(int count, int maxWords, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ =>
            new[] { 101 }.Concat(Enumerable.Range(0, random.Next(1, maxWords + 1)).Select(_ => random.Next(999, 30522))).Append(102).ToArray())];
    }

    private static float[] Alone(Embedder embedder, int[] tokens)
    {
        var v = new float[embedder.Dimensions];
        embedder.Embed(tokens, v);
        return v;
    }

    [Fact]
    public void The_fixture_loads_as_an_encoder_with_mean_pooling()
    {
        var c = _model.Config;
        Assert.True(c.Family.Encoder);
        Assert.False(c.CausalAttention);
        Assert.Equal(PoolingType.Mean, c.Pooling);
        Assert.Equal(1e-12f, c.RmsNormEps);
        var w = _model.Weights;
        Assert.Equal((512, 32), (w.PositionEmbedding!.Rows, w.PositionEmbedding.Columns));
        Assert.Equal(32, w.TokenType.Length);
        Assert.Equal(32, w.EmbeddingNormBias.Length);
        Assert.All(w.Layers, l => Assert.Equal((32, 128, 32, 32), (l.OutputBias.Length, l.UpBias.Length, l.DownBias.Length, l.FeedForwardNormBias.Length)));
        Assert.All(w.Layers, l => Assert.Null(l.Gate));
        Assert.Null(w.Classifier);
        using var embedder = _model.CreateEmbedder();
        Assert.Equal((PoolingType.Mean, 32, 512), (embedder.Pooling, embedder.Dimensions, embedder.MaxTokens));
    }

    [Fact]
    public void Packed_texts_give_the_bits_of_each_text_alone_over_any_passes_and_threads()
    {
        int[][] sequences = [.. ReferenceTokens, .. RandomSequences(40, 60, seed: 1)];
        float[][] alone;
        using (var single = _model.CreateEmbedder())
            alone = [.. sequences.Select(s => Alone(single, s))];
        foreach (var options in new[]
        {
            new EmbedderOptions(),                                  // one pass
            new EmbedderOptions { BatchTokens = 64, Threads = 2 },  // many passes
            new EmbedderOptions { BatchTokens = 100, Threads = 3 },
        })
        {
            using var packed = _model.CreateEmbedder(options);
            var vectors = packed.EmbedTokens(sequences);
            for (int i = 0; i < sequences.Length; i++)
                Assert.Equal(alone[i], vectors[i]);
            Assert.Equal(sequences.Sum(s => s.Length), packed.LastTokenCount);
        }
    }

    [Fact]
    public void Per_token_rows_are_the_same_alone_and_in_other_company()
    {
        using var embedder = _model.CreateEmbedder(new EmbedderOptions { Normalize = false });
        var tokens = BertFixture.Reference.Texts[2].Tokens;
        var rows = embedder.TokenEmbeddings(tokens);
        // The CLS row is CLS pooling; the mean of the rows is mean pooling, in the same order of fused products.
        using var cls = _model.CreateEmbedder(new EmbedderOptions { Pooling = PoolingType.Cls, Normalize = false });
        Assert.Equal(Enumerable.Range(0, 32).Select(d => rows[0, d]).ToArray(), Alone(cls, tokens));
        var mean = new float[32];
        for (int t = 0; t < tokens.Length; t++)
        {
            for (int d = 0; d < 32; d++)
                mean[d] = MathF.FusedMultiplyAdd(rows[t, d], 1f / tokens.Length, mean[d]);
        }
        Assert.Equal(mean, Alone(embedder, tokens));
        // Normalized rows: each row divided by its own norm.
        using var normalized = _model.CreateEmbedder(new EmbedderOptions { Pooling = PoolingType.None });
        var unit = normalized.TokenEmbeddings(tokens);
        for (int t = 0; t < tokens.Length; t++)
            Assert.Equal(1.0, Math.Sqrt(Enumerable.Range(0, 32).Sum(d => (double)unit[t, d] * unit[t, d])), 5);
        Assert.Throws<InvalidOperationException>(() => normalized.Embed(tokens, new float[32]));
    }

    [Fact]
    public void Eight_threads_embedding_a_thousand_texts_give_the_vectors_of_one_by_one_embedding()
    {
        var sequences = RandomSequences(1000, 40, seed: 2);
        float[][] expected;
        using (var single = _model.CreateEmbedder())
            expected = [.. sequences.Select(s => Alone(single, s))];

        // Eight embedders on eight threads, each embedding its share in batches of 25.
        var results = new float[sequences.Length][];
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, part =>
        {
            using var embedder = _model.CreateEmbedder(new EmbedderOptions { BatchTokens = 512 });
            for (int start = part * 125; start < (part + 1) * 125; start += 25)
            {
                var vectors = embedder.EmbedTokens(sequences[start..(start + 25)]);
                vectors.CopyTo(results, start);
            }
        });
        for (int i = 0; i < sequences.Length; i++)
            Assert.Equal(expected[i], results[i]);

        // One embedder whose passes split over eight threads.
        using var threaded = _model.CreateEmbedder(new EmbedderOptions { Threads = 8 });
        var all = threaded.EmbedTokens(sequences);
        for (int i = 0; i < sequences.Length; i++)
            Assert.Equal(expected[i], all[i]);
    }

    [Fact]
    public void A_shared_embedder_entered_while_busy_throws_and_names_the_fix()
    {
        using var embedder = _model.CreateEmbedder();
        var tokens = ReferenceTokens[1];
        var expected = Alone(embedder, tokens);
        embedder.Enter(); // another operation in progress
        var ex = Assert.Throws<InvalidOperationException>(() => Task.Run(() => embedder.Embed(tokens, new float[32])).GetAwaiter().GetResult());
        Assert.Contains("model.CreateEmbedder", ex.Message);
        Assert.Throws<InvalidOperationException>(() => embedder.EmbedTokens([tokens]));
        embedder.Exit();
        Assert.Equal(expected, Alone(embedder, tokens));
    }

    [Fact]
    public void Two_threads_racing_on_one_embedder_are_caught_and_never_get_wrong_vectors()
    {
        using var embedder = _model.CreateEmbedder();
        var sequences = RandomSequences(64, 60, seed: 3);
        var expected = embedder.EmbedTokens(sequences);
        int caught = 0;
        var deadline = DateTime.UtcNow.AddSeconds(20);
        Parallel.For(0, 2, _ =>
        {
            while (Volatile.Read(ref caught) == 0 && DateTime.UtcNow < deadline)
            {
                try
                {
                    var vectors = embedder.EmbedTokens(sequences);
                    for (int i = 0; i < vectors.Length; i++)
                        Assert.Equal(expected[i], vectors[i]);
                }
                catch (InvalidOperationException)
                {
                    Interlocked.Increment(ref caught);
                }
            }
        });
        Assert.True(caught > 0, "two threads never overlapped in 20 s");
    }

    [Fact]
    public void Embedding_a_sequence_into_a_buffer_allocates_nothing()
    {
        using var embedder = _model.CreateEmbedder();
        var tokens = ReferenceTokens[2];
        var destination = new float[embedder.Dimensions];
        embedder.Embed(tokens, destination); // buffers grow on first use
        Assert.Equal(0, Allocations.Fewest(() => embedder.Embed(tokens, destination)));
        using var threaded = _model.CreateEmbedder(new EmbedderOptions { Threads = 2 });
        threaded.Embed(tokens, destination);
        Assert.Equal(0, Allocations.Fewest(() => threaded.Embed(tokens, destination)));
    }

    [Fact]
    public void Bad_input_gets_a_clear_exception()
    {
        using var embedder = _model.CreateEmbedder(new EmbedderOptions { BatchTokens = 16 });
        Assert.Equal(16, embedder.MaxTokens);
        var tooLong = Enumerable.Repeat(1000, 17).ToArray();
        var ex = Assert.Throws<ArgumentException>(() => embedder.Embed(tooLong, new float[32]));
        Assert.Contains("at most 16", ex.Message.Replace("1 to 16", "at most 16"));
        Assert.Throws<ArgumentException>(() => embedder.EmbedTokens([[101, 102], tooLong]));
        Assert.Throws<ArgumentException>(() => embedder.Embed([], new float[32]));
        Assert.Throws<ArgumentException>(() => embedder.Embed([101, 30522], new float[32]));
        Assert.Throws<ArgumentException>(() => embedder.Embed([101, -1], new float[32]));
        Assert.Throws<ArgumentException>(() => embedder.Embed([101, 102], new float[31]));
        var longText = Assert.Throws<ArgumentException>(() => embedder.Embed(string.Join(' ', Enumerable.Repeat("word", 100))));
        Assert.Contains("102 tokens", longText.Message);
        Assert.Throws<InvalidOperationException>(() => embedder.Score("a", "b"));
        // The context bounds a text too: the position embeddings hold 512 positions.
        using var wide = _model.CreateEmbedder(new EmbedderOptions { BatchTokens = 4096 });
        Assert.Equal(512, wide.MaxTokens);
        Assert.Throws<ArgumentException>(() => wide.Embed(Enumerable.Repeat(1000, 513).ToArray(), new float[32]));
        Assert.Throws<ArgumentOutOfRangeException>(() => _model.CreateEmbedder(new EmbedderOptions { BatchTokens = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => _model.CreateEmbedder(new EmbedderOptions { Threads = 0 }));
        Assert.Throws<ArgumentException>(() => _model.CreateEmbedder(new EmbedderOptions { Pooling = PoolingType.Rank }));
        var generate = Assert.Throws<NotSupportedException>(() => _model.CreateGenerator());
        Assert.Contains("CreateEmbedder", generate.Message);
    }

    [Fact]
    public void The_reference_texts_embed_from_their_text_as_from_their_ids()
    {
        using var embedder = _model.CreateEmbedder();
        var texts = BertFixture.Reference.Texts;
        var vectors = embedder.Embed([.. texts.Select(t => t.Text)]);
        Assert.Equal(texts.Sum(t => t.Tokens.Length), embedder.LastTokenCount);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(texts[i].Tokens, embedder.Tokenize(texts[i].Text));
            Assert.Equal(Alone(embedder, texts[i].Tokens), vectors[i]);
        }
    }

    [Fact]
    public void Texts_are_tokenized_with_the_models_special_tokens()
    {
        using var embedder = _model.CreateEmbedder();
        string[] texts = ["hello world", "tabs\tand spaces", "a"];
        var vectors = embedder.Embed(texts);
        for (int i = 0; i < texts.Length; i++)
        {
            var tokens = embedder.Tokenize(texts[i]);
            Assert.Equal(_model.Tokenizer.Encode(texts[i]), tokens);
            Assert.Equal(tokens.Length, embedder.CountTokens(texts[i]));
            Assert.Equal(Alone(embedder, tokens), vectors[i]);
            Assert.Equal(vectors[i], embedder.Embed(texts[i]));
        }
    }
}
