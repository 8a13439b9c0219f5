using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>
/// IEEE 754 binary16 (ggml's <c>ggml_fp16_t</c>, GGUF type F16) held as its 16 bits.
/// F32→F16 rounds to nearest, ties to even, as x86 F16C <c>vcvtps2ph</c> (which ggml uses): values
/// from 65520 up become infinity, NaN stays NaN (quieted, the top mantissa bits kept). F16→F32 is exact.
/// </summary>
public static class Float16
{
    // Bit patterns of the F32 encoding.
    private const uint F32SignMask = 0x8000_0000u;
    private const uint F32AbsMask = 0x7FFF_FFFFu;
    private const uint F32Inf = 0x7F80_0000u;
    private const uint F32SmallestHalfNormal = 0x3880_0000u; // 2^-14
    private const uint F32HalfOverflow = 0x477F_F000u;       // 65520: rounds to F16 infinity
    private const uint RebiasF32ToF16 = (127 - 15) << 23;
    private const float HalfSubnormalUnit = 1.0f / (1 << 24); // 2^-24

    /// <summary>Widens an F16 value to F32 (exact).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort half)
    {
        uint em = half & 0x7FFFu;
        uint sign = (uint)(half & 0x8000) << 16;
        uint bits;
        if (em - 0x400u < 0x7800u)
            bits = (em << 13) + RebiasF32ToF16;           // normal
        else if (em >= 0x7C00u)
            bits = (em << 13) | F32Inf;                   // infinity, NaN (payload kept)
        else
            bits = BitConverter.SingleToUInt32Bits(em * HalfSubnormalUnit); // zero, subnormal
        return BitConverter.UInt32BitsToSingle(bits | sign);
    }

    /// <summary><see cref="ToSingle(ushort)"/> by table lookup: two loads, no branches, for block scales in hot loops.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float ToSingleLookup(ushort half) => Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(Widened.Table), half);

    /// <summary>Rounds an F32 value to F16 (nearest, ties to even).</summary>
    public static ushort FromSingle(float value)
    {
        uint x = BitConverter.SingleToUInt32Bits(value);
        uint sign = (x >> 16) & 0x8000u;
        uint ax = x & F32AbsMask;
        if (ax >= F32HalfOverflow)
            return (ushort)(sign | (ax > F32Inf ? 0x7E00u | ((ax >> 13) & 0x3FFu) : 0x7C00u));
        if (ax < F32SmallestHalfNormal)
        {
            // F16 subnormal or zero: the count of 2^-24 units, rounded to even (1024 carries into the smallest normal).
            float units = MathF.Round(BitConverter.UInt32BitsToSingle(ax) * (1 << 24), MidpointRounding.ToEven);
            return (ushort)(sign | (uint)units);
        }
        // Round the 23-bit mantissa to 10 bits; a carry moves into the exponent, which is what rounding wants.
        return (ushort)(sign | ((ax + 0xFFFu + ((ax >> 13) & 1u) - RebiasF32ToF16) >> 13));
    }

    /// <summary>Widens <paramref name="src"/> to F32 (<paramref name="dst"/> at least as long).</summary>
    public static void ToSingle(ReadOnlySpan<ushort> src, Span<float> dst) => HalfRows.ToSingle<F16Format>(src, dst);

    /// <summary>Rounds <paramref name="src"/> (<paramref name="dst"/> at least as long).</summary>
    public static void FromSingle(ReadOnlySpan<float> src, Span<ushort> dst) => HalfRows.FromSingle<F16Format>(src, dst);

    /// <summary>dst[i] = src[i] rounded to the nearest F16 value, as F32: <c>ToSingle(FromSingle(x))</c> (dst may alias src).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Round(ReadOnlySpan<float> src, Span<float> dst)
    {
        if (dst.Length < src.Length)
            throw new ArgumentException($"Destination holds {dst.Length} values; {src.Length} needed.", nameof(dst));
        int i = 0, n = src.Length;
        ref float s = ref MemoryMarshal.GetReference(src);
        ref float d = ref MemoryMarshal.GetReference(dst);
        if (CpuFeatures.Vector512)
        {
            for (; i + 16 <= n; i += 16)
                Round(Vector512.LoadUnsafe(ref s, (nuint)i)).StoreUnsafe(ref d, (nuint)i);
        }
        if (CpuFeatures.Vector256)
        {
            for (; i + 8 <= n; i += 8)
                Round(Vector256.LoadUnsafe(ref s, (nuint)i)).StoreUnsafe(ref d, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref d, i) = ToSingle(FromSingle(Unsafe.Add(ref s, i)));
    }

    // Round in vectors, without leaving F32: the mantissa rounded to 10 bits in place (ties to even) in the F16 normal
    // range, to a multiple of 2^-24 below it; from 65520 infinity; NaN quieted with its top 10 payload bits.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Round(Vector512<float> x)
    {
        Vector512<uint> ax = x.AsUInt32() & Vector512.Create(F32AbsMask);
        Vector512<uint> normal = (ax + Vector512.Create(0xFFFu) + ((ax >> 13) & Vector512<uint>.One)) & Vector512.Create(~0x1FFFu);
        Vector512<uint> subnormal = (Vector512.Round(ax.AsSingle() * (1 << 24)) * HalfSubnormalUnit).AsUInt32();
        Vector512<uint> special = Vector512.ConditionalSelect(Vector512.GreaterThan(ax, Vector512.Create(F32Inf)),
            Vector512.Create(0x7FC0_0000u) | (ax & Vector512.Create(0x007F_E000u)), Vector512.Create(F32Inf));
        Vector512<uint> bits = Vector512.ConditionalSelect(Vector512.LessThan(ax, Vector512.Create(F32SmallestHalfNormal)), subnormal,
            Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(ax, Vector512.Create(F32HalfOverflow)), special, normal));
        return (bits | (x.AsUInt32() & Vector512.Create(F32SignMask))).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Round(Vector256<float> x)
    {
        Vector256<uint> ax = x.AsUInt32() & Vector256.Create(F32AbsMask);
        Vector256<uint> normal = (ax + Vector256.Create(0xFFFu) + ((ax >> 13) & Vector256<uint>.One)) & Vector256.Create(~0x1FFFu);
        Vector256<uint> subnormal = (Vector256.Round(ax.AsSingle() * (1 << 24)) * HalfSubnormalUnit).AsUInt32();
        Vector256<uint> special = Vector256.ConditionalSelect(Vector256.GreaterThan(ax, Vector256.Create(F32Inf)),
            Vector256.Create(0x7FC0_0000u) | (ax & Vector256.Create(0x007F_E000u)), Vector256.Create(F32Inf));
        Vector256<uint> bits = Vector256.ConditionalSelect(Vector256.LessThan(ax, Vector256.Create(F32SmallestHalfNormal)), subnormal,
            Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(ax, Vector256.Create(F32HalfOverflow)), special, normal));
        return (bits | (x.AsUInt32() & Vector256.Create(F32SignMask))).AsSingle();
    }

    /// <summary>Σ a[i]·x[i] over equal-length spans: Float16 <paramref name="a"/>, F32 <paramref name="x"/>.</summary>
    public static float Dot(ReadOnlySpan<ushort> a, ReadOnlySpan<float> x) => HalfRows.Dot<F16Format>(a, x);

    /// <summary>Builds the table <see cref="ToSingleLookup"/> reads (see <see cref="KernelStatics"/>).</summary>
    internal static void InitializeLookup() => RuntimeHelpers.RunClassConstructor(typeof(Widened).TypeHandle);

    /// <summary>Every F16 value widened (256 KiB), built when the assembly loads.</summary>
    private static class Widened
    {
        // A raw array: ToSingleLookup reads it with Unsafe.Add, no bounds check, in the dequantization loops.
        [ThreadSafeStatic("filled once in the static constructor, never written after")]
        public static readonly float[] Table = Build();

        private static float[] Build()
        {
            var table = new float[65536];
            for (int h = 0; h < table.Length; h++)
                table[h] = ToSingle((ushort)h);
            return table;
        }
    }

    // Widening in vectors: each half sign-extended to 32 bits and shifted left by 13 has its sign at bit 31 and its
    // exponent and mantissa at their F32 places, where they read as 2^-112 times the value (a normal F16 becomes a
    // normal F32, a subnormal one an F32 subnormal): one exact multiply by 2^112 rebiases both. Infinity and NaN
    // (exponent all ones) get the F32 exponent all ones, mantissa kept.
    private const uint F32HalfSignExponentMantissa = 0x8FFF_E000u; // sign, F16 bits 0-14 after << 13
    private const uint F32HalfExponentMantissa = 0x0FFF_E000u;
    private const uint F32HalfInfinity = 0x0F80_0000u;             // F16 infinity after << 13
    private const float RebiasScale = 5.192297E+33f;               // 2^112

    /// <summary>Eight F16 values widened to F32, the vector form of <see cref="ToSingle(ushort)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Widen(Vector128<ushort> half)
    {
        Vector256<uint> shifted = (Vector256.WidenLower(half.AsInt16().ToVector256Unsafe()) << 13).AsUInt32();
        Vector256<float> value = (shifted & Vector256.Create(F32HalfSignExponentMantissa)).AsSingle() * Vector256.Create(RebiasScale);
        Vector256<uint> special = Vector256.GreaterThanOrEqual(shifted & Vector256.Create(F32HalfExponentMantissa), Vector256.Create(F32HalfInfinity));
        return Vector256.ConditionalSelect(special, value.AsUInt32() | Vector256.Create(F32Inf), value.AsUInt32()).AsSingle();
    }

    /// <summary>Sixteen F16 values widened to F32: <see cref="Widen"/> at 512 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Widen512(Vector256<ushort> half)
    {
        Vector512<uint> shifted = (Vector512.WidenLower(half.AsInt16().ToVector512Unsafe()) << 13).AsUInt32();
        Vector512<float> value = (shifted & Vector512.Create(F32HalfSignExponentMantissa)).AsSingle() * Vector512.Create(RebiasScale);
        Vector512<uint> special = Vector512.GreaterThanOrEqual(shifted & Vector512.Create(F32HalfExponentMantissa), Vector512.Create(F32HalfInfinity));
        return Vector512.ConditionalSelect(special, value.AsUInt32() | Vector512.Create(F32Inf), value.AsUInt32()).AsSingle();
    }

    /// <summary>Eight F32 values rounded to F16 (in the low 16 bits of each lane), the vector form of <see cref="FromSingle(float)"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<uint> Narrow(Vector256<float> value)
    {
        Vector256<uint> x = value.AsUInt32();
        Vector256<uint> sign = (x >> 16) & Vector256.Create(0x8000u);
        Vector256<uint> ax = x & Vector256.Create(F32AbsMask);
        Vector256<uint> normal = (ax + Vector256.Create(0xFFFu) + ((ax >> 13) & Vector256<uint>.One) - Vector256.Create(RebiasF32ToF16)) >> 13;
        Vector256<uint> subnormal = Vector256.ConvertToInt32(
            Vector256.Round(ax.AsSingle() * Vector256.Create((float)(1 << 24)))).AsUInt32();
        Vector256<uint> special = Vector256.ConditionalSelect(
            Vector256.GreaterThan(ax, Vector256.Create(F32Inf)),
            Vector256.Create(0x7E00u) | ((ax >> 13) & Vector256.Create(0x3FFu)),
            Vector256.Create(0x7C00u));
        Vector256<uint> bits = Vector256.ConditionalSelect(
            Vector256.LessThan(ax, Vector256.Create(F32SmallestHalfNormal)), subnormal,
            Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(ax, Vector256.Create(F32HalfOverflow)), special, normal));
        return bits | sign;
    }
}

/// <summary>The F16 format for <see cref="HalfRows"/>.</summary>
internal readonly struct F16Format : IHalfFormat
{
    public static float ToSingle(ushort value) => Float16.ToSingle(value);
    public static ushort FromSingle(float value) => Float16.FromSingle(value);
    public static Vector256<float> Widen(Vector128<ushort> value) => Float16.Widen(value);
    public static Vector512<float> Widen512(Vector256<ushort> value) => Float16.Widen512(value);
    public static Vector256<uint> Narrow(Vector256<float> value) => Float16.Narrow(value);
}
