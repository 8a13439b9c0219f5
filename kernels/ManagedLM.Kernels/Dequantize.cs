using System.Runtime.InteropServices;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Kernels;

/// <summary>Converts rows of any supported tensor type to F32.</summary>
public static class Dequantize
{
    /// <summary>True when rows of <paramref name="type"/> can be dequantized.</summary>
    public static bool Supports(GgmlType type) => type switch
    {
        GgmlType.F32 => true,
        // float and legacy block types
        // K-quants and IQ4_XS
        GgmlType.Q2_K or GgmlType.Q3_K or GgmlType.Q4_K or GgmlType.Q5_K or GgmlType.Q6_K or GgmlType.Q8_K or GgmlType.IQ4_XS => true,
        _ => false,
    };

    /// <summary>Dequantizes <paramref name="dst"/>.Length elements stored as <paramref name="type"/> in <paramref name="src"/>.</summary>
    public static void Row(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        long needed = GgmlTypes.RowBytes(type, dst.Length);
        if (src.Length < needed)
            throw new ArgumentException($"{dst.Length} {type} elements need {needed} bytes; got {src.Length}.", nameof(src));
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.Cast<byte, float>(src)[..dst.Length].CopyTo(dst);
                break;
            // float and legacy block types
            // K-quants and IQ4_XS
            case GgmlType.Q2_K: Blocks<Q2KBlock>(src, dst); break;
            case GgmlType.Q3_K: Blocks<Q3KBlock>(src, dst); break;
            case GgmlType.Q4_K: Blocks<Q4KBlock>(src, dst); break;
            case GgmlType.Q5_K: Blocks<Q5KBlock>(src, dst); break;
            case GgmlType.Q6_K: Blocks<Q6KBlock>(src, dst); break;
            case GgmlType.Q8_K: Blocks<Q8KBlock>(src, dst); break;
            case GgmlType.IQ4_XS: Blocks<IQ4XSBlock>(src, dst); break;
            default:
                throw new NotSupportedException($"Dequantizing {GgmlTypes.Name(type)} is not supported.");
        }
    }

    internal static void Blocks<T>(ReadOnlySpan<byte> src, Span<float> dst) where T : unmanaged, IQuantBlock<T> =>
        T.Dequantize(MemoryMarshal.Cast<byte, T>(src)[..(dst.Length / T.BlockSize)], dst);
}
