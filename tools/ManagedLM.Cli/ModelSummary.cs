using System.Collections.Frozen;
using ManagedLM.Gguf;
using ManagedLM.Kernels;
using ManagedLM.Model;

namespace ManagedLM.Cli;

/// <summary>
/// What a model is, for reports: architecture, parameter count and file type ("llama 1.1B Q4_K - Medium", as llama.cpp
/// describes a model), bytes of weights, and the weight bytes one decode step reads (every matrix once; of the token
/// embedding only a row, unless it is also the output).
/// </summary>
internal sealed record ModelSummary(string Path, string Type, long Parameters, long SizeBytes, long DecodeBytes)
{
    public const string FileTypeKey = "general.file_type";

    public static ModelSummary Of(TransformerModel model, string path)
    {
        var c = model.Config;
        var w = model.Weights;
        var matrices = w.Layers.SelectMany(l => l.Matrices)
            .Append(w.TokenEmbedding).Distinct().Append(w.Output).Distinct().ToArray();
        long parameters = matrices.Sum(m => (long)m.Rows * m.Columns)
            + (long)c.BlockCount * 2 * c.EmbeddingLength + c.EmbeddingLength;
        long bytes = matrices.Sum(m => m.RowBytes * m.Rows) + ((long)c.BlockCount * 2 * c.EmbeddingLength + c.EmbeddingLength) * 4;
        string fileType = FileTypeName(model.Metadata,
            () => matrices.GroupBy(m => m.Type).OrderByDescending(g => g.Sum(m => m.RowBytes * m.Rows)).First().Key);
        // A token reads every matrix but the experts it is not routed to.
        static long Bytes(WeightMatrix m) => m.RowBytes * m.Rows;
        long decodeBytes = w.Layers.Sum(l => l.Matrices.Sum(Bytes)
            - (l.Experts.IsEmpty ? 0 : l.Experts.Sum(e => Bytes(e.Gate) + Bytes(e.Up) + Bytes(e.Down)) * (c.ExpertCount - c.ExpertUsedCount) / c.ExpertCount))
            + Bytes(w.Output);
        return new ModelSummary(path, $"{c.Architecture} {Size(parameters)} {fileType}", parameters, bytes, decodeBytes);
    }

    /// <summary>
    /// The name llama.cpp gives the file's <c>general.file_type</c> (<see cref="FileTypeName(long)"/>); without the key, the
    /// name of the tensor type <paramref name="dominantType"/> picks (the one holding the most bytes).
    /// </summary>
    public static string FileTypeName(GgufMetadata metadata, Func<GgmlType> dominantType) =>
        FileType(metadata) is long fileType ? FileTypeName(fileType) : GgmlTypes.Name(dominantType());

    /// <summary>The file's <c>general.file_type</c>, or null when it has none (or not an integer).</summary>
    public static long? FileType(GgufMetadata metadata) => metadata.TryGetValue(FileTypeKey, out var value) ? value.AsInt64 : null;

    /// <summary>llama.cpp's name of a <c>general.file_type</c> (llama_model_ftype_name): "Q4_0", "Q4_K - Medium", "all F32".</summary>
    public static string FileTypeName(long fileType)
    {
        string name = FileTypeNames.GetValueOrDefault(fileType & ~GuessedFlag, "unknown, may not work");
        return (fileType & GuessedFlag) != 0 ? name + " (guessed)" : name;
    }

    // LLAMA_FTYPE_GUESSED: set when llama.cpp guessed the type from the tensors.
    private const long GuessedFlag = 1024;

    // llama.cpp's enum llama_ftype and llama_model_ftype_name.
    private static readonly FrozenDictionary<long, string> FileTypeNames = new Dictionary<long, string>
    {
        [0] = "all F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [7] = "Q8_0", [8] = "Q5_0", [9] = "Q5_1",
        [10] = "Q2_K - Medium", [11] = "Q3_K - Small", [12] = "Q3_K - Medium", [13] = "Q3_K - Large",
        [14] = "Q4_K - Small", [15] = "Q4_K - Medium", [16] = "Q5_K - Small", [17] = "Q5_K - Medium", [18] = "Q6_K",
        [19] = "IQ2_XXS - 2.0625 bpw", [20] = "IQ2_XS - 2.3125 bpw", [21] = "Q2_K - Small", [22] = "IQ3_XS - 3.3 bpw",
        [23] = "IQ3_XXS - 3.0625 bpw", [24] = "IQ1_S - 1.5625 bpw", [25] = "IQ4_NL - 4.5 bpw", [26] = "IQ3_S - 3.4375 bpw",
        [27] = "IQ3_S mix - 3.66 bpw", [28] = "IQ2_S - 2.5 bpw", [29] = "IQ2_M - 2.7 bpw", [30] = "IQ4_XS - 4.25 bpw",
        [31] = "IQ1_M - 1.75 bpw", [32] = "BF16", [36] = "TQ1_0 - 1.69 bpw ternary", [37] = "TQ2_0 - 2.06 bpw ternary",
        [38] = "MXFP4 MoE",
    }.ToFrozenDictionary();

    private static string Size(long n) => n >= 1_000_000_000 ? $"{n / 1e9:0.#}B" : n >= 1_000_000 ? $"{n / 1e6:0.#}M" : $"{n / 1e3:0.#}K";
}
