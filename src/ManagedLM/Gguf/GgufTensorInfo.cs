using ManagedLM.Kernels;

namespace ManagedLM.Gguf;

/// <summary>One tensor's entry in a GGUF file: name, shape (ne0 first: ne0 is the row length), type and where its data is.</summary>
public sealed class GgufTensorInfo
{
    /// <summary>The tensor's name (<c>blk.0.attn_q.weight</c>, ...).</summary>
    public string Name { get; }
    /// <summary>Dimensions, fastest-varying first (GGUF/ggml <c>ne</c>): a matrix of R rows of C columns is [C, R].</summary>
    public IReadOnlyList<long> Shape { get; }
    /// <summary>Element (block) type of the data.</summary>
    public GgmlType Type { get; }
    /// <summary>Byte offset of the data from the start of the data section.</summary>
    public long Offset { get; }
    /// <summary>Byte offset of the data from the start of the file (of its split's file, for a split model).</summary>
    public long FileOffset { get; }
    /// <summary>Which file of a split model holds the data (0-based, as <c>split.no</c>); 0 for a single file.</summary>
    public int Split { get; }
    /// <summary>Number of elements: the product of the shape.</summary>
    public long ElementCount { get; }
    /// <summary>Bytes of data: whole blocks of <see cref="Type"/>.</summary>
    public long ByteSize { get; }

    /// <summary>Row length (ne0); 1 for a 0-dimensional tensor.</summary>
    public long Columns => Shape.Count > 0 ? Shape[0] : 1;
    /// <summary>Number of rows (product of ne1..).</summary>
    public long Rows => Columns == 0 ? 0 : ElementCount / Columns;

    /// <summary>Byte offset of this tensor's info (its name) in its file: where a format error about the tensor points.</summary>
    internal long InfoOffset { get; }

    internal GgufTensorInfo(string name, long[] shape, GgmlType type, long offset, long fileOffset, long elementCount, long byteSize,
        int split = 0, long infoOffset = 0)
    {
        Name = name;
        Shape = Array.AsReadOnly(shape);
        Type = type;
        Offset = offset;
        FileOffset = fileOffset;
        ElementCount = elementCount;
        ByteSize = byteSize;
        Split = split;
        InfoOffset = infoOffset;
    }

    /// <summary>This tensor as the tensor of split <paramref name="split"/> of a split model.</summary>
    internal GgufTensorInfo InSplit(int split) =>
        new(Name, Shape.ToArray(), Type, Offset, FileOffset, ElementCount, ByteSize, split, InfoOffset);

    /// <summary>
    /// Element count and byte size of a tensor of <paramref name="type"/> and <paramref name="shape"/>;
    /// returns what is wrong (negative or overflowing dimensions, a row that is not whole blocks, an unknown type), or null.
    /// </summary>
    internal static string? ComputeSize(IReadOnlyList<long> shape, GgmlType type, out long elements, out long bytes)
    {
        elements = 1;
        bytes = 0;
        if (!GgmlTypes.IsKnown((uint)type))
            return $"unknown tensor type id {(uint)type}";
        for (int d = 0; d < shape.Count; d++)
        {
            long ne = shape[d];
            if (ne < 0)
                return $"dimension {d} is negative ({ne})";
            if (ne != 0 && elements > long.MaxValue / ne)
                return $"element count of shape [{string.Join(", ", shape)}] overflows";
            elements *= ne;
        }
        int blockSize = GgmlTypes.BlockSize(type);
        long ne0 = shape.Count > 0 ? shape[0] : 1;
        if (ne0 % blockSize != 0)
            return $"row length {ne0} is not a multiple of the {GgmlTypes.Name(type)} block size {blockSize}";
        long blocks = elements / blockSize;
        int blockBytes = GgmlTypes.BlockBytes(type);
        if (blocks > long.MaxValue / blockBytes)
            return $"byte size of shape [{string.Join(", ", shape)}] overflows";
        bytes = blocks * blockBytes;
        return null;
    }

    public override string ToString() => $"{Name} {GgmlTypes.Name(Type)} [{string.Join(", ", Shape)}]";
}
