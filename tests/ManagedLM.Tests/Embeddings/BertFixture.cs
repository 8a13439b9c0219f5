using System.Text.Json;
using ManagedLM.Gguf;
using ManagedLM.Model;
using ManagedLM.Tests.Model;

namespace ManagedLM.Tests.Embeddings;

/// <summary>synth-bert-Q8_0 (../shared/models/synthetic/README.md) and its llama.cpp embedding reference.</summary>
internal static class BertFixture
{
    public const string File = "synthetic/synth-bert-Q8_0.gguf";
    public const string ReferenceFile = "synthetic/synth-bert-Q8_0.ref.json.gz";

    /// <summary>The fixture as a model.</summary>
    public static TransformerModel Load(ModelOptions? options = null) => TransformerModel.Load(TestData.Model(File), options);

    /// <summary>The fixture's bytes, its metadata edited, tensors dropped (<paramref name="keep"/>) and added.</summary>
    public static byte[] Bytes(Action<List<KeyValuePair<string, GgufValue>>>? editMetadata = null,
        IEnumerable<(GgufTensorSpec Tensor, byte[] Data)>? extraTensors = null, Func<GgufTensorInfo, bool>? keep = null)
    {
        using var file = GgufFile.Open(TestData.Model(File));
        var metadata = file.Metadata.ToKeyValueList();
        editMetadata?.Invoke(metadata);
        var tensors = file.Tensors.Where(t => keep?.Invoke(t) ?? true).Select(t => (GgufTensorSpec.From(t), file.GetTensorData(t).ToArray())).ToList();
        tensors.AddRange(extraTensors ?? []);
        return GgufWriter.ToBytes(metadata, tensors);
    }

    private static readonly Lazy<BertReference> ReferenceLazy = new(() => BertReference.Load(ReferenceFile));

    public static BertReference Reference => ReferenceLazy.Value;
}

/// <summary>One text of the embedding reference: its ids, and llama.cpp's vectors (synthetic/README.md, "Embedding reference").</summary>
internal sealed record BertText(string Text, int[] Tokens, float[] Embedding, float Norm, float[] EmbeddingCls, float NormCls, float[][] TokenEmbeddings);

internal sealed record BertReference(int EmbeddingLength, BertText[] Texts)
{
    public static BertReference Load(string relativePath)
    {
        using var doc = JsonDocument.Parse(TestData.ReadBytes(TestData.Model(relativePath)));
        var root = doc.RootElement;
        static float[] Floats(JsonElement e) => [.. e.EnumerateArray().Select(v => v.GetSingle())];
        var texts = root.GetProperty("texts").EnumerateArray().Select(t => new BertText(
            t.GetProperty("text").GetString()!,
            [.. t.GetProperty("tokens").EnumerateArray().Select(v => v.GetInt32())],
            Floats(t.GetProperty("embedding")),
            t.GetProperty("norm").GetSingle(),
            Floats(t.GetProperty("embedding_cls")),
            t.GetProperty("norm_cls").GetSingle(),
            [.. t.GetProperty("token_embeddings").EnumerateArray().Select(Floats)])).ToArray();
        return new BertReference(root.GetProperty("n_embd").GetInt32(), texts);
    }
}
