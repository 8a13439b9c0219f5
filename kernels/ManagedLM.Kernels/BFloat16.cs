using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>
/// bfloat16 (ggml's <c>ggml_bf16_t</c>, GGUF type BF16) held as its 16 bits: the top half of an F32.
/// F32→BF16 is <c>ggml_compute_fp32_to_bf16</c>: round to nearest, ties to even, subnormals kept,
/// NaN quieted (bit 6 set) with its top payload bits kept. BF16→F32 is exact.
/// </summary>
public static class BFloat16
{
    /// <summary>Widens a BF16 value to F32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);

    /// <summary>Rounds an F32 value to BF16 (nearest, ties to even; NaN quieted).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value)
    {
        uint x = BitConverter.SingleToUInt32Bits(value);
        if ((x & 0x7FFF_FFFFu) > 0x7F80_0000u)
            return (ushort)((x >> 16) | 0x40u);
        return (ushort)((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
    }

    /// <summary>Widens <paramref name="src"/> to F32 (<paramref name="dst"/> at least as long).</summary>
    public static void ToSingle(ReadOnlySpan<ushort> src, Span<float> dst) => HalfRows.ToSingle<BF16Format>(src, dst);

    /// <summary>Rounds <paramref name="src"/> (<paramref name="dst"/> at least as long).</summary>
    public static void FromSingle(ReadOnlySpan<float> src, Span<ushort> dst) => HalfRows.FromSingle<BF16Format>(src, dst);

    /// <summary>Σ a[i]·x[i] over equal-length spans: BFloat16 <paramref name="a"/>, F32 <paramref name="x"/>.</summary>
    public static float Dot(ReadOnlySpan<ushort> a, ReadOnlySpan<float> x) => HalfRows.Dot<BF16Format>(a, x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Widen(Vector128<ushort> value) =>
        (Vector256.WidenLower(value.ToVector256Unsafe()) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Widen512(Vector256<ushort> value) =>
        (Vector512.WidenLower(value.ToVector512Unsafe()) << 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> Narrow(Vector256<float> value)
    {
        Vector256<uint> x = value.AsUInt32();
        Vector256<uint> rounded = (x + Vector256.Create(0x7FFFu) + ((x >> 16) & Vector256<uint>.One)) >> 16;
        Vector256<uint> quietNaN = (x >> 16) | Vector256.Create(0x40u);
        return Vector256.ConditionalSelect(
            Vector256.GreaterThan(x & Vector256.Create(0x7FFF_FFFFu), Vector256.Create(0x7F80_0000u)), quietNaN, rounded);
    }
}

/// <summary>The BF16 format for <see cref="HalfRows"/>.</summary>
internal readonly struct BF16Format : IHalfFormat
{
    public static float ToSingle(ushort value) => BFloat16.ToSingle(value);
    public static ushort FromSingle(float value) => BFloat16.FromSingle(value);
    public static Vector256<float> Widen(Vector128<ushort> value) => BFloat16.Widen(value);
    public static Vector512<float> Widen512(Vector256<ushort> value) => BFloat16.Widen512(value);
    public static Vector256<uint> Narrow(Vector256<float> value) => BFloat16.Narrow(value);
}
