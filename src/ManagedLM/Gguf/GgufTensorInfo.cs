using ManagedLM.Kernels;

namespace ManagedLM.Gguf;

/// <summary>One tensor's entry in a GGUF file: name, shape (ne0 first: ne0 is the row length), type and where its data is.</summary>
public sealed class GgufTensorInfo
{
    public string Name { get; }
    /// <summary>Dimensions, fastest-varying first (GGUF/ggml <c>ne</c>): a matrix of R rows of C columns is [C, R].</summary>
    public IReadOnlyList<long> Shape { get; }
    public GgmlType Type { get; }
    /// <summary>Byte offset of the data from the start of the data section.</summary>
    public long Offset { get; }
    /// <summary>Byte offset of the data from the start of the file.</summary>
    public long FileOffset { get; }
    public long ElementCount { get; }
    public long ByteSize { get; }

    /// <summary>Row length (ne0); 1 for a 0-dimensional tensor.</summary>
    public long Columns => Shape.Count > 0 ? Shape[0] : 1;
    /// <summary>Number of rows (product of ne1..).</summary>
    public long Rows => Columns == 0 ? 0 : ElementCount / Columns;

    internal GgufTensorInfo(string name, long[] shape, GgmlType type, long offset, long fileOffset, long elementCount, long byteSize)
    {
        Name = name;
        Shape = shape;
        Type = type;
        Offset = offset;
        FileOffset = fileOffset;
        ElementCount = elementCount;
        ByteSize = byteSize;
    }

    public override string ToString() => $"{Name} {GgmlTypes.Name(Type)} [{string.Join(", ", Shape)}]";
}
