using System.Runtime.CompilerServices;

namespace ManagedLM.Kernels;

/// <summary>Converts rows of any supported tensor type to F32.</summary>
public static unsafe class Dequantize
{
    /// <summary>True when rows of <paramref name="type"/> can be dequantized.</summary>
    public static bool Supports(GgmlType type) => TypeTable.Of((uint)type).Dequantize != null;

    /// <summary>Dequantizes <paramref name="dst"/>.Length elements stored as <paramref name="type"/> in <paramref name="src"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Row(GgmlType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        long needed = GgmlTypes.RowBytes(type, dst.Length);
        if (src.Length < needed)
            throw new ArgumentException($"{dst.Length} {type} elements need {needed} bytes; got {src.Length}.", nameof(src));
        ref readonly TypeTraits t = ref TypeTable.Of(type);
        if (t.Dequantize == null)
            throw new NotSupportedException($"Dequantizing {GgmlTypes.Name(type)} is not supported.");
        t.Dequantize(src, dst);
    }
}
