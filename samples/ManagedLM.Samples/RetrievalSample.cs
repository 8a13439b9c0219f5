using System.Numerics.Tensors;
using System.Text.Json;
using ManagedLM.Embeddings;
using ManagedLM.Model;
using Microsoft.Extensions.AI;

namespace ManagedLM.Samples;

/// <summary>The README's retrieval sample: a small vector search through <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>.</summary>
internal static class RetrievalSample
{
    /// <summary>Prints the documents best first, then a line of JSON: their order and scores.</summary>
    public static async Task RunAsync(TransformerModel model, CancellationToken ct)
    {
        #region readme: retrieval
        using IEmbeddingGenerator<string, Embedding<float>> generator = new ModelEmbeddingGenerator(model);
        string[] documents =
        [
            "The cat sat on the warm mat.",
            "Stock prices fell sharply on Monday.",
            "A kitten chased a ball of yarn.",
            "The recipe needs two cups of flour.",
        ];
        var index = await generator.GenerateAsync(documents, cancellationToken: ct);      // one pass for all four
        var query = await generator.GenerateVectorAsync("Where is the cat?", cancellationToken: ct);
        var ranked = index.Select((e, i) => (Document: documents[i], Score: TensorPrimitives.CosineSimilarity(query.Span, e.Vector.Span)))
            .OrderByDescending(r => r.Score).ToList();
        foreach (var (document, score) in ranked)
            Console.WriteLine($"{score:F3}  {document}");
        #endregion

        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["documents"] = ranked.Select(r => r.Document).ToArray(),
            ["scores"] = ranked.Select(r => r.Score).ToArray(),
            ["tokens"] = index.Usage?.InputTokenCount,
        }));
    }
}
