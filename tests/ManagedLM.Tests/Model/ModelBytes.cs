using System.Runtime.InteropServices;
using ManagedLM.Gguf;

namespace ManagedLM.Tests.Model;

/// <summary>stories260K (F32 throughout) in memory, with metadata and tensor values edited: for loading with TransformerModel.Load(bytes).</summary>
internal static class ModelBytes
{
    /// <summary>"▁Timmy": in no greedy continuation the tests use, so a model whose embedding row of it is NaN fails only prompts holding it.</summary>
    public const int PoisonedToken = 405;

    /// <summary>stories260K's bytes after <paramref name="metadata"/> edits its pairs and <paramref name="tensor"/> each tensor's floats (with its name).</summary>
    public static byte[] Stories(Action<List<KeyValuePair<string, GgufValue>>>? metadata = null, Action<string, Span<float>>? tensor = null)
    {
        using var file = GgufFile.Open(TestData.Model("stories260K.gguf"));
        var pairs = file.Metadata.ToKeyValueList();
        metadata?.Invoke(pairs);
        var tensors = file.Tensors.Select(t =>
        {
            byte[] data = file.GetTensorData(t).ToArray();
            tensor?.Invoke(t.Name, MemoryMarshal.Cast<byte, float>(data.AsSpan()));
            return (GgufTensorSpec.From(t), data);
        }).ToList();
        return GgufWriter.ToBytes(pairs, tensors);
    }

    /// <summary>stories260K with metadata <paramref name="key"/> set to <paramref name="value"/>.</summary>
    public static byte[] StoriesWith(string key, GgufValue value) => Stories(m => Set(m, key, value));

    /// <summary>stories260K whose token embedding row <paramref name="token"/> is NaN.</summary>
    public static byte[] StoriesWithNaNEmbedding(int token = PoisonedToken) =>
        Stories(tensor: (name, w) =>
        {
            if (name == "token_embd.weight")
                w.Slice(token * 64, 64).Fill(float.NaN);
        });

    /// <summary>Sets (or appends) a metadata pair.</summary>
    public static void Set(List<KeyValuePair<string, GgufValue>> m, string key, GgufValue value)
    {
        int i = m.FindIndex(kv => kv.Key == key);
        if (i >= 0) m[i] = KeyValuePair.Create(key, value);
        else m.Add(KeyValuePair.Create(key, value));
    }
}
