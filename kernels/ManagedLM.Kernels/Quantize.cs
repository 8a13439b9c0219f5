using System.Runtime.InteropServices;
using ManagedLM.Kernels.Quants;

namespace ManagedLM.Kernels;

/// <summary>Reference quantization of F32 rows, byte for byte as ggml's <c>quantize_row_*_ref</c>.</summary>
public static class Quantize
{
    /// <summary>True when F32 can be quantized to <paramref name="type"/>.</summary>
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

    /// <summary>Quantizes <paramref name="src"/> into <paramref name="dst"/> (<see cref="GgmlTypes.RowBytes"/> bytes).</summary>
    public static void Row(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        long needed = GgmlTypes.RowBytes(type, src.Length);
        if (dst.Length < needed)
            throw new ArgumentException($"{src.Length} {type} elements need {needed} bytes; got {dst.Length}.", nameof(dst));
        switch (type)
        {
            case GgmlType.F32:
                MemoryMarshal.AsBytes(src).CopyTo(dst);
                break;
            // float and legacy block types
            case GgmlType.F16:
                Float16.FromSingle(src, MemoryMarshal.Cast<byte, ushort>(dst)[..src.Length]);
                break;
            case GgmlType.BF16:
                BFloat16.FromSingle(src, MemoryMarshal.Cast<byte, ushort>(dst)[..src.Length]);
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
                throw new NotSupportedException($"Quantizing to {GgmlTypes.Name(type)} is not supported.");
        }
    }

    internal static void Blocks<T>(ReadOnlySpan<float> src, Span<byte> dst) where T : unmanaged, IQuantizableBlock<T> =>
        T.Quantize(src, MemoryMarshal.Cast<byte, T>(dst)[..(src.Length / T.BlockSize)]);
}
