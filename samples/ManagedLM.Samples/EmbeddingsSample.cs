using System.Numerics.Tensors;
using System.Text.Json;
using ManagedLM.Embeddings;
using ManagedLM.Model;

namespace ManagedLM.Samples;

/// <summary>The README's "Embeddings": an <see cref="Embedder"/> on the model, one text and a list.</summary>
internal static class EmbeddingsSample
{
    /// <summary>Prints a line of JSON: the vectors, the similarity and the tokens counted.</summary>
    public static Task RunAsync(TransformerModel model, CancellationToken ct)
    {
        #region readme: embeddings
        using var embedder = model.CreateEmbedder();                    // one request's scratch; the model stays shared
        float[] query = embedder.Embed("Once upon a time");             // pooled as the file says, L2-normalized
        float[][] texts = embedder.Embed(["Tom had a ball", "The sun was hot", "Lily saw a cat"]);   // one pass for all
        int tokens = embedder.LastTokenCount;                           // usage of the last call
        float similarity = TensorPrimitives.Dot(query, texts[0]);      // cosine: unit vectors
        #endregion

        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["query"] = query,
            ["texts"] = texts,
            ["tokens"] = tokens,
            ["similarity"] = similarity,
        }));
        return Task.CompletedTask;
    }
}
