using ManagedLM.Gguf;

namespace ManagedLM.Tests.Gguf;

/// <summary>Deep comparison of GGUF content: metadata values and types in order, tensor infos and data.</summary>
internal static class GgufAssert
{
    public static void SameContent(GgufFile expected, GgufFile actual)
    {
        Assert.Equal(expected.Alignment, actual.Alignment);
        Assert.Equal(expected.Metadata.Keys, actual.Metadata.Keys);
        for (int i = 0; i < expected.Metadata.Count; i++)
            SameValue(expected.Metadata[i].Value, actual.Metadata[i].Value, expected.Metadata[i].Key);
        Assert.Equal(expected.Tensors.Count, actual.Tensors.Count);
        for (int i = 0; i < expected.Tensors.Count; i++)
        {
            var e = expected.Tensors[i];
            var a = actual.Tensors[i];
            Assert.Equal(e.Name, a.Name);
            Assert.Equal(e.Type, a.Type);
            Assert.Equal(e.Shape, a.Shape);
            Assert.True(expected.GetTensorData(e).SequenceEqual(actual.GetTensorData(a)), $"data of {e.Name} differs");
        }
    }

    /// <summary>Same type and value; floats compared by bits (NaN payloads and -0 included).</summary>
    public static void SameValue(GgufValue expected, GgufValue actual, string path)
    {
        Assert.True(expected.Type == actual.Type, $"{path}: type {actual.Type}, expected {expected.Type}");
        SameItem(expected.Value, actual.Value, path);
    }

    private static void SameItem(object? expected, object? actual, string path)
    {
        switch (expected)
        {
            case GgufArray e:
                var a = Assert.IsType<GgufArray>(actual);
                Assert.True(e.ElementType == a.ElementType, $"{path}: element type {a.ElementType}, expected {e.ElementType}");
                Assert.True(e.Count == a.Count, $"{path}: {a.Count} items, expected {e.Count}");
                Assert.Equal(e.Items.GetType(), a.Items.GetType());
                for (int i = 0; i < e.Count; i++)
                    SameItem(e.Items.GetValue(i), a.Items.GetValue(i), $"{path}[{i}]");
                break;
            case float f:
                Assert.True(BitConverter.SingleToUInt32Bits(f) == BitConverter.SingleToUInt32Bits(Assert.IsType<float>(actual)), $"{path}: {actual} != {f}");
                break;
            case double d:
                Assert.True(BitConverter.DoubleToUInt64Bits(d) == BitConverter.DoubleToUInt64Bits(Assert.IsType<double>(actual)), $"{path}: {actual} != {d}");
                break;
            default:
                Assert.True(Equals(expected, actual), $"{path}: {actual} != {expected}");
                break;
        }
    }
}
