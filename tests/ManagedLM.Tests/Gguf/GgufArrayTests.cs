using ManagedLM.Gguf;

namespace ManagedLM.Tests.Gguf;

/// <summary>Metadata arrays are immutable: a loaded model's metadata is shared by every thread.</summary>
public class GgufArrayTests
{
    [Fact]
    public void Constructor_copies_the_items()
    {
        int[] items = [1, 2, 3];
        var array = GgufArray.Of(items);
        items[0] = 99;
        Assert.Equal([1, 2, 3], array.AsSpan<int>().ToArray());
    }

    [Fact]
    public void An_array_cannot_be_made_to_contain_itself()
    {
        var items = new GgufArray[1];
        var array = GgufArray.Of(items);
        items[0] = array;
        Assert.Null(array.AsSpan<GgufArray>()[0]);
    }

    [Fact]
    public void AsSpan_needs_the_element_type()
    {
        var array = GgufArray.Of(new uint[] { 7, 8 });
        Assert.Equal([7u, 8u], array.AsSpan<uint>().ToArray());
        // Array covariance would let a uint[] pass as int[]: the exact type is required.
        var ex = Assert.Throws<InvalidOperationException>(() => array.AsSpan<int>().Length);
        Assert.Contains("UInt32", ex.Message);
    }

    [Fact]
    public void GetArray_returns_a_copy()
    {
        byte[] file = GgufWriter.ToBytes([KeyValuePair.Create("tokens", GgufValue.Of(GgufArray.Of(["a", "b"])))], []);
        using var gguf = GgufFile.Parse(file);
        string[] first = gguf.Metadata.GetArray<string>("tokens");
        first[0] = "changed";
        Assert.Equal(["a", "b"], gguf.Metadata.GetArray<string>("tokens"));
        Assert.Equal(["a", "b"], gguf.Metadata.GetArrayOrNull<string>("tokens")!);
    }
}
