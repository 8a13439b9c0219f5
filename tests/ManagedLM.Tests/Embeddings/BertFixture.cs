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

    /// <summary>The cosine of two vectors, summed in double.</summary>
    public static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }

    /// <summary>A random F32 tensor, uniform in ±<paramref name="scale"/>.</summary>
    public static (GgufTensorSpec, byte[]) Tensor(string name, long[] shape, Random random, float scale)
    {
        var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return (new GgufTensorSpec(name, ManagedLM.Kernels.GgmlType.F32, shape), values.SelectMany(BitConverter.GetBytes).ToArray());
    }

    private static float[] Floats(byte[] data) => [.. Enumerable.Range(0, data.Length / 4).Select(i => BitConverter.ToSingle(data, 4 * i))];

    /// <summary>The fixture as a reranker with <paramref name="labels"/> outputs: pooling_type 4 and a random head (its tensors returned too).</summary>
    public static (byte[] File, float[] W, float[] B, float[] W2, float[] B2) Reranker(int labels, int seed = 5)
    {
        const int Embd = 32;
        var random = new Random(seed);
        var w = Tensor("cls.weight", [Embd, Embd], random, 0.3f);
        var b = Tensor("cls.bias", [Embd], random, 0.1f);
        var w2 = Tensor("cls.output.weight", [Embd, labels], random, 0.5f);
        var b2 = Tensor("cls.output.bias", [labels], random, 0.1f);
        var bytes = Bytes(m => ModelBytes.Set(m, "bert.pooling_type", GgufValue.Of(4u)), [w, b, w2, b2]);
        return (bytes, Floats(w.Item2), Floats(b.Item2), Floats(w2.Item2), Floats(b2.Item2));
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
