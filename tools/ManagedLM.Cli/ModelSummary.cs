using ManagedLM.Kernels;
using ManagedLM.Model;

namespace ManagedLM.Cli;

/// <summary>
/// What a model is, for reports: architecture, parameter count, bytes of weights, dominant tensor type, and the weight
/// bytes one decode step reads (every matrix once; of the token embedding only a row, unless it is also the output).
/// </summary>
internal sealed record ModelSummary(string Path, string Type, long Parameters, long SizeBytes, long DecodeBytes)
{
    public static ModelSummary Of(TransformerModel model, string path)
    {
        var c = model.Config;
        var w = model.Weights;
        var matrices = w.Layers.SelectMany(l => new[] { l.Query, l.Key, l.Value, l.Output, l.Gate, l.Up, l.Down })
            .Append(w.TokenEmbedding).Distinct().Append(w.Output).Distinct().ToArray();
        long parameters = matrices.Sum(m => (long)m.Rows * m.Columns)
            + (long)c.BlockCount * 2 * c.EmbeddingLength + c.EmbeddingLength;
        long bytes = matrices.Sum(m => m.RowBytes * m.Rows) + ((long)c.BlockCount * 2 * c.EmbeddingLength + c.EmbeddingLength) * 4;
        var dominant = matrices.GroupBy(m => m.Type).OrderByDescending(g => g.Sum(m => m.RowBytes * m.Rows)).First().Key;
        long decodeBytes = w.Layers.SelectMany(l => new[] { l.Query, l.Key, l.Value, l.Output, l.Gate, l.Up, l.Down }).Append(w.Output)
            .Sum(m => m.RowBytes * m.Rows);
        return new ModelSummary(path, $"{c.Architecture} {Size(parameters)} {GgmlTypes.Name(dominant)}", parameters, bytes, decodeBytes);
    }

    private static string Size(long n) => n >= 1_000_000_000 ? $"{n / 1e9:0.#}B" : n >= 1_000_000 ? $"{n / 1e6:0.#}M" : $"{n / 1e3:0.#}K";
}
