using System.Runtime.CompilerServices;

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
}
