using System.Runtime.InteropServices;
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

    // Messages are built only on failure: vocab files hold hundreds of thousands of items.
    private static void SameItem(object? expected, object? actual, string path)
    {
        switch (expected)
        {
            case GgufArray e:
                var a = Assert.IsType<GgufArray>(actual);
                if (e.ElementType != a.ElementType || e.Count != a.Count || e.Items.GetType() != a.Items.GetType())
                    Assert.Fail($"{path}: {a.ElementType} x {a.Count}, expected {e.ElementType} x {e.Count}");
                if (e.Items is GgufArray[] nested)
                {
                    for (int i = 0; i < nested.Length; i++)
                        SameItem(nested[i], a.Items.GetValue(i), $"{path}[{i}]");
                }
                else if (e.Items is string[] strings)
                {
                    var other = (string[])a.Items;
                    for (int i = 0; i < strings.Length; i++)
                    {
                        if (!string.Equals(strings[i], other[i], StringComparison.Ordinal))
                            Assert.Fail($"{path}[{i}]: \"{other[i]}\" != \"{strings[i]}\"");
                    }
                }
                else if (!RawBytes(e.Items).SequenceEqual(RawBytes(a.Items)))
                {
                    Assert.Fail($"{path}: items differ: {a.Describe(8)} != {e.Describe(8)}");
                }
                break;
            case float f:
                if (BitConverter.SingleToUInt32Bits(f) != BitConverter.SingleToUInt32Bits(Assert.IsType<float>(actual)))
                    Assert.Fail($"{path}: {actual} != {f}");
                break;
            case double d:
                if (BitConverter.DoubleToUInt64Bits(d) != BitConverter.DoubleToUInt64Bits(Assert.IsType<double>(actual)))
                    Assert.Fail($"{path}: {actual} != {d}");
                break;
            default:
                if (!Equals(expected, actual))
                    Assert.Fail($"{path}: {actual} != {expected}");
                break;
        }
    }

    // The bytes of an array of a primitive type (floats compared bit for bit).
    private static ReadOnlySpan<byte> RawBytes(Array items) =>
        MemoryMarshal.CreateReadOnlySpan(ref MemoryMarshal.GetArrayDataReference(items), Buffer.ByteLength(items));
}
