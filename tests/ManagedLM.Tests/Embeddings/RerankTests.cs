using ManagedLM.Embeddings;
using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Model;
using ManagedLM.Tests.Model;

namespace ManagedLM.Tests.Embeddings;

/// <summary>
/// Rank pooling: the BERT fixture with a random classifier head (<c>cls</c>, <c>cls.output</c>, as llama.cpp's rerankers
/// carry it) scores a pair as a scalar reference computes it from the [CLS] row; and malformed encoder files are refused.
/// </summary>
public class RerankTests
{
    private const int Embd = 32;

    private static (GgufTensorSpec, byte[]) Tensor(string name, long[] shape, Random random, float scale) => BertFixture.Tensor(name, shape, random, scale);

    private static (byte[] File, float[] W, float[] B, float[] W2, float[] B2) Reranker(int labels, int seed = 5) => BertFixture.Reranker(labels, seed);

    // The pair as llama.cpp lays it out for BERT: [CLS] query [SEP] document.
    private static int[] Pair(int[] query, int[] document) => [101, .. query, 102, .. document];

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void Scores_are_the_classifier_head_over_the_cls_row(int labels)
    {
        var (file, w, b, w2, b2) = Reranker(labels);
        using var model = TransformerModel.Load(file);
        Assert.Equal(PoolingType.Rank, model.Config.Pooling);
        using var reranker = model.CreateEmbedder();
        Assert.Equal((PoolingType.Rank, labels), (reranker.Pooling, reranker.Dimensions));
        using var hidden = model.CreateEmbedder(new EmbedderOptions { Normalize = false });
        var random = new Random(6);
        var pairs = Enumerable.Range(0, 8).Select(_ => Pair(
            [.. Enumerable.Range(0, random.Next(1, 8)).Select(_ => random.Next(999, 30522))],
            [.. Enumerable.Range(0, random.Next(1, 30)).Select(_ => random.Next(999, 30522))])).ToArray();
        var scores = reranker.EmbedTokens(pairs);
        for (int p = 0; p < pairs.Length; p++)
        {
            // The scalar reference in double: h = tanh(W·x + b), scores = W2·h + b2, x the [CLS] row's final state.
            var rows = hidden.TokenEmbeddings(pairs[p]);
            var h = new double[Embd];
            for (int i = 0; i < Embd; i++)
            {
                double sum = b[i];
                for (int j = 0; j < Embd; j++)
                    sum += (double)w[i * Embd + j] * rows[0, j];
                h[i] = Math.Tanh(sum);
            }
            Assert.Equal(labels, scores[p].Length);
            for (int k = 0; k < labels; k++)
            {
                double expected = b2[k];
                for (int j = 0; j < Embd; j++)
                    expected += w2[k * Embd + j] * h[j];
                Assert.True(Math.Abs(scores[p][k] - expected) <= 1e-5 * (1 + Math.Abs(expected)), $"pair {p} label {k}: {scores[p][k]} vs {expected}");
            }
            // Alone and packed: the same bits; scores are never normalized.
            var alone = new float[labels];
            reranker.Embed(pairs[p], alone);
            Assert.Equal(scores[p], alone);
        }
        using var unnormalized = model.CreateEmbedder(new EmbedderOptions { Normalize = false, Threads = 2, BatchTokens = 40 });
        var again = unnormalized.EmbedTokens(pairs);
        for (int p = 0; p < pairs.Length; p++)
            Assert.Equal(scores[p], again[p]);
    }

    [Fact]
    public void Text_pairs_are_laid_out_as_llama_cpp_lays_them_out_and_rerank_scores_each_document()
    {
        using var model = TransformerModel.Load(Reranker(1).File);
        using var reranker = model.CreateEmbedder();
        var pair = reranker.TokenizePair("what is a cat", "a cat is an animal");
        // [CLS] what is a cat [SEP] a cat is an animal: no [SEP] after the document (llama.cpp's format_prompt_rerank).
        Assert.Equal([101, 2054, 2003, 1037, 4937, 102, 1037, 4937, 2003, 2019, 4111], pair);
        Assert.Equal(model.Tokenizer.EncodePair("what is a cat", "a cat is an animal"), pair);
        Assert.Equal(reranker.EmbedTokens([pair])[0][0], reranker.Score("what is a cat", "a cat is an animal"));
        string[] documents = ["a cat is an animal", "the sky is blue", "cats purr"];
        var scores = reranker.Rerank("what is a cat", documents);
        Assert.Equal(documents.Sum(d => reranker.TokenizePair("what is a cat", d).Length), reranker.LastTokenCount);
        Assert.Equal(documents.Select(d => reranker.Score("what is a cat", d)).ToArray(), scores);
        using var plain = TransformerModel.Load(BertFixture.Bytes());
        using var embedder = plain.CreateEmbedder();
        Assert.Throws<InvalidOperationException>(() => embedder.Rerank("q", documents));
    }

    [Fact]
    public void Malformed_encoder_files_are_format_errors()
    {
        var random = new Random(1);
        Assert.Throws<GgufFormatException>(() => TransformerModel.Load(BertFixture.Bytes(m => ModelBytes.Set(m, "bert.pooling_type", GgufValue.Of(9u)))));
        Assert.Throws<GgufFormatException>(() => TransformerModel.Load(BertFixture.Bytes(extraTensors: [Tensor("cls.output.weight", [16, 1], random, 1)])));
        Assert.Throws<GgufFormatException>(() => TransformerModel.Load(BertFixture.Bytes(extraTensors: [Tensor("cls.weight", [32, 16], random, 1)])));
        Assert.Throws<GgufFormatException>(() => TransformerModel.Load(BertFixture.Bytes(
            keep: t => t.Name != "position_embd.weight", extraTensors: [Tensor("position_embd.weight", [16, 512], random, 1)])));
        Assert.Throws<GgufFormatException>(() => TransformerModel.Load(BertFixture.Bytes(
            keep: t => t.Name != "token_types.weight", extraTensors: [Tensor("token_types.weight", [31, 2], random, 1)])));
        Assert.Throws<GgufFormatException>(() => TransformerModel.Load(BertFixture.Bytes(keep: t => t.Name != "position_embd.weight")));
        Assert.Throws<GgufFormatException>(() => TransformerModel.Load(BertFixture.Bytes(keep: t => t.Name != "blk.1.layer_output_norm.weight")));
        var nan = Tensor("token_embd_norm.bias", [32], random, 1);
        BitConverter.GetBytes(float.NaN).CopyTo(nan.Item2, 8);
        Assert.Throws<GgufFormatException>(() => TransformerModel.Load(BertFixture.Bytes(keep: t => t.Name != "token_embd_norm.bias", extraTensors: [nan])));
        Assert.Throws<GgufFormatException>(() => TransformerModel.Load(BertFixture.Bytes(m => m.RemoveAll(kv => kv.Key == "bert.attention.layer_norm_epsilon"))));
    }
}
