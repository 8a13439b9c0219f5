using System.Runtime.CompilerServices;
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

    /// <summary>True when <paramref name="id"/> names a type that ggml defines (whether or not ManagedLM computes with it).</summary>
    public static bool IsKnown(uint id) => TypeTable.Of(id).IsKnown;

    /// <summary>Elements per block (1 for plain float and integer types).</summary>
    public static int BlockSize(GgmlType type) => TypeTable.Of(type).BlockSize;

    /// <summary>Bytes per block.</summary>
    public static int BlockBytes(GgmlType type) => TypeTable.Of(type).BlockBytes;

    /// <summary>Bytes of a row of <paramref name="elements"/> values; the count must be a multiple of the block size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static long RowBytes(GgmlType type, long elements)
    {
        ref readonly TypeTraits t = ref TypeTable.Of(type);
        if (elements % t.BlockSize != 0)
            throw new ArgumentException($"{type} rows hold multiples of {t.BlockSize} elements; got {elements}.", nameof(elements));
        return checked(elements / t.BlockSize * t.BlockBytes);
    }

    /// <summary>The name ggml prints for the type (<c>Q4_K</c>, <c>F16</c>, ...).</summary>
    public static string Name(GgmlType type) => IsKnown((uint)type) ? type.ToString() : $"type {(uint)type}";
}
