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
        GgmlType.F16 or GgmlType.BF16 or GgmlType.Q4_0 or GgmlType.Q4_1 or GgmlType.Q5_0 or GgmlType.Q5_1
            or GgmlType.Q8_0 or GgmlType.Q8_1 or GgmlType.IQ4_NL => true,
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
            case GgmlType.F16:
                Float16.ToSingle(MemoryMarshal.Cast<byte, ushort>(src)[..dst.Length], dst);
                break;
            case GgmlType.BF16:
                BFloat16.ToSingle(MemoryMarshal.Cast<byte, ushort>(src)[..dst.Length], dst);
                break;
            case GgmlType.Q4_0: Blocks<Q4_0Block>(src, dst); break;
            case GgmlType.Q4_1: Blocks<Q4_1Block>(src, dst); break;
            case GgmlType.Q5_0: Blocks<Q5_0Block>(src, dst); break;
            case GgmlType.Q5_1: Blocks<Q5_1Block>(src, dst); break;
            case GgmlType.Q8_0: Blocks<Q8_0Block>(src, dst); break;
            case GgmlType.Q8_1: Blocks<Q8_1Block>(src, dst); break;
            case GgmlType.IQ4_NL: Blocks<IQ4NLBlock>(src, dst); break;
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
