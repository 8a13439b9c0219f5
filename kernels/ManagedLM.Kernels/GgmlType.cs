namespace ManagedLM.Kernels;

/// <summary>Tensor element types, numbered as in ggml/GGUF (<c>enum ggml_type</c>).</summary>
/// <remarks>Ids 4, 5, 31–33 and 36–38 were removed from ggml and are not valid in files.</remarks>
public enum GgmlType : uint
{
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
}

/// <summary>Block geometry of every <see cref="GgmlType"/>: elements per block and bytes per block.</summary>
public static class GgmlTypes
{
    /// <summary>Elements per super-block of the K-quants (QK_K).</summary>
    public const int QK_K = 256;

    // (elements per block, bytes per block); (0, 0) for an id that is not a type.
    private static (int BlockSize, int BlockBytes) Geometry(GgmlType type) => type switch
    {
        GgmlType.F32 => (1, 4),
        GgmlType.F16 => (1, 2),
        GgmlType.Q4_0 => (32, 18),
        GgmlType.Q4_1 => (32, 20),
        GgmlType.Q5_0 => (32, 22),
        GgmlType.Q5_1 => (32, 24),
        GgmlType.Q8_0 => (32, 34),
        GgmlType.Q8_1 => (32, 36),
        GgmlType.Q2_K => (QK_K, 84),
        GgmlType.Q3_K => (QK_K, 110),
        GgmlType.Q4_K => (QK_K, 144),
        GgmlType.Q5_K => (QK_K, 176),
        GgmlType.Q6_K => (QK_K, 210),
        GgmlType.Q8_K => (QK_K, 292),
        GgmlType.IQ2_XXS => (QK_K, 66),
        GgmlType.IQ2_XS => (QK_K, 74),
        GgmlType.IQ3_XXS => (QK_K, 98),
        GgmlType.IQ1_S => (QK_K, 50),
        GgmlType.IQ4_NL => (32, 18),
        GgmlType.IQ3_S => (QK_K, 110),
        GgmlType.IQ2_S => (QK_K, 82),
        GgmlType.IQ4_XS => (QK_K, 136),
        GgmlType.I8 => (1, 1),
        GgmlType.I16 => (1, 2),
        GgmlType.I32 => (1, 4),
        GgmlType.I64 => (1, 8),
        GgmlType.F64 => (1, 8),
        GgmlType.IQ1_M => (QK_K, 56),
        GgmlType.BF16 => (1, 2),
        GgmlType.TQ1_0 => (QK_K, 54),
        GgmlType.TQ2_0 => (QK_K, 66),
        GgmlType.MXFP4 => (32, 17),
        _ => (0, 0),
    };

    /// <summary>True when <paramref name="id"/> names a type that ggml defines (whether or not ManagedLM computes with it).</summary>
    public static bool IsKnown(uint id) => Geometry((GgmlType)id).BlockSize != 0;

    /// <summary>Elements per block (1 for plain float and integer types).</summary>
    public static int BlockSize(GgmlType type) => Get(type).BlockSize;

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(GgmlType type) => Get(type).BlockBytes;

    /// <summary>Bytes of a row of <paramref name="elements"/> values; the count must be a multiple of the block size.</summary>
    public static long RowBytes(GgmlType type, long elements)
    {
        var (bs, bb) = Get(type);
        if (elements % bs != 0)
            throw new ArgumentException($"{type} rows hold multiples of {bs} elements; got {elements}.", nameof(elements));
        return checked(elements / bs * bb);
    }

    /// <summary>The name ggml prints for the type (<c>Q4_K</c>, <c>F16</c>, ...).</summary>
    public static string Name(GgmlType type) => IsKnown((uint)type) ? type.ToString() : $"type {(uint)type}";

    private static (int BlockSize, int BlockBytes) Get(GgmlType type)
    {
        if (!IsKnown((uint)type))
            throw new NotSupportedException($"Unknown ggml type id {(uint)type}.");
        return Geometry(type);
    }
}
