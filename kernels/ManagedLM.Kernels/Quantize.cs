using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ManagedLM.Kernels;

/// <summary>Reference quantization of F32 rows, byte for byte as ggml's <c>quantize_row_*_ref</c>.</summary>
public static unsafe class Quantize
{
    /// <summary>True when F32 can be quantized to <paramref name="type"/>.</summary>
    public static bool Supports(GgmlType type) => TypeTable.Of((uint)type).Quantize != null;

    /// <summary>Quantizes <paramref name="src"/> into <paramref name="dst"/> (<see cref="GgmlTypes.RowBytes"/> bytes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Row(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        long needed = GgmlTypes.RowBytes(type, src.Length);
        if (dst.Length < needed)
            throw new ArgumentException($"{src.Length} {type} elements need {needed} bytes; got {dst.Length}.", nameof(dst));
        ref readonly TypeTraits t = ref TypeTable.Of(type);
        if (t.Quantize == null)
            throw new NotSupportedException($"Quantizing to {GgmlTypes.Name(type)} is not supported.");
        t.Quantize(src, dst);
    }

    /// <summary>
    /// Quantizes a matmul's activation row into <paramref name="dst"/> as llama.cpp's CPU backend does on x86: Q8_0 and Q8_1
    /// by its AVX2 quantizers (<see cref="Quants.Q8Quantizer.ActivationBlock"/>), which round a few values otherwise than the
    /// reference; every other type as <see cref="Row"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ActivationRow(GgmlType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        if (type is not (GgmlType.Q8_0 or GgmlType.Q8_1))
        {
            Row(type, src, dst);
            return;
        }
        long needed = GgmlTypes.RowBytes(type, src.Length);
        if (dst.Length < needed)
            throw new ArgumentException($"{src.Length} {type} elements need {needed} bytes; got {dst.Length}.", nameof(dst));
        if (type == GgmlType.Q8_0)
            Quants.Q8_0Block.QuantizeActivation(src, MemoryMarshal.Cast<byte, Quants.Q8_0Block>(dst)[..(src.Length / 32)]);
        else
            Quants.Q8_1Block.QuantizeActivation(src, MemoryMarshal.Cast<byte, Quants.Q8_1Block>(dst)[..(src.Length / 32)]);
    }
}
