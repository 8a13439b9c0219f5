using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ManagedLM.Kernels;

/// <summary>A 16-bit float format (F16 or BF16): scalar and eight-lane conversions to and from F32.</summary>
internal interface IHalfFormat
{
    static abstract float ToSingle(ushort value);
    static abstract ushort FromSingle(float value);

    /// <summary>Eight values widened to F32.</summary>
    static abstract Vector256<float> Widen(Vector128<ushort> value);

    /// <summary>Sixteen values widened to F32 (used when <see cref="CpuFeatures.Vector512"/>).</summary>
    static abstract Vector512<float> Widen512(Vector256<ushort> value);

    /// <summary>Eight F32 values rounded, each in the low 16 bits of its lane.</summary>
    static abstract Vector256<uint> Narrow(Vector256<float> value);
}

/// <summary>Row conversions and dot products shared by <see cref="Float16"/> and <see cref="BFloat16"/>.</summary>
internal static unsafe class HalfRows
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ToSingle<TFormat>(ReadOnlySpan<ushort> src, Span<float> dst) where TFormat : IHalfFormat
    {
        if (dst.Length < src.Length)
            throw new ArgumentException($"Destination holds {dst.Length} values; {src.Length} needed.", nameof(dst));
        int i = 0, n = src.Length;
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref float d = ref MemoryMarshal.GetReference(dst);
        if (CpuFeatures.Vector256)
        {
            for (; i + 8 <= n; i += 8)
                TFormat.Widen(Vector128.LoadUnsafe(ref s, (nuint)i)).StoreUnsafe(ref d, (nuint)i);
        }
        for (; i < n; i++)
            Unsafe.Add(ref d, i) = TFormat.ToSingle(Unsafe.Add(ref s, i));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void FromSingle<TFormat>(ReadOnlySpan<float> src, Span<ushort> dst) where TFormat : IHalfFormat
    {
        if (dst.Length < src.Length)
            throw new ArgumentException($"Destination holds {dst.Length} values; {src.Length} needed.", nameof(dst));
        int i = 0, n = src.Length;
        ref float s = ref MemoryMarshal.GetReference(src);
        ref ushort d = ref MemoryMarshal.GetReference(dst);
        if (CpuFeatures.Vector256)
        {
            for (; i + 16 <= n; i += 16)
            {
                var lo = TFormat.Narrow(Vector256.LoadUnsafe(ref s, (nuint)i));
                var hi = TFormat.Narrow(Vector256.LoadUnsafe(ref s, (nuint)i + 8));
                Vector256.Narrow(lo, hi).StoreUnsafe(ref d, (nuint)i);
            }
        }
        for (; i < n; i++)
            Unsafe.Add(ref d, i) = TFormat.FromSingle(Unsafe.Add(ref s, i));
    }

    public static float Dot<TFormat>(ReadOnlySpan<ushort> a, ReadOnlySpan<float> x) where TFormat : IHalfFormat
    {
        if (a.Length != x.Length)
            throw new ArgumentException($"Lengths differ: {a.Length} and {x.Length}.");
        return DotCore<TFormat>(a, x);
    }

    /// <summary>Σ a[i]·x[i]: four 16-lane (else 8-lane) FMA accumulators, an 8-lane loop, then a scalar tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotCore<TFormat>(ReadOnlySpan<ushort> a, ReadOnlySpan<float> x) where TFormat : IHalfFormat
    {
        int n = a.Length, i = 0;
        ref ushort pa = ref MemoryMarshal.GetReference(a);
        ref float px = ref MemoryMarshal.GetReference(x);
        float sum = 0;
        if (CpuFeatures.Vector256 && n >= 8)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            if (CpuFeatures.Vector512 && n >= 64)
            {
                Vector512<float> t0 = Vector512<float>.Zero, t1 = t0, t2 = t0, t3 = t0;
                for (; i + 64 <= n; i += 64)
                {
                    Vector512<ushort> h0 = Vector512.LoadUnsafe(ref pa, (nuint)i), h1 = Vector512.LoadUnsafe(ref pa, (nuint)i + 32);
                    t0 = Vector512.FusedMultiplyAdd(TFormat.Widen512(h0.GetLower()), Vector512.LoadUnsafe(ref px, (nuint)i), t0);
                    t1 = Vector512.FusedMultiplyAdd(TFormat.Widen512(h0.GetUpper()), Vector512.LoadUnsafe(ref px, (nuint)i + 16), t1);
                    t2 = Vector512.FusedMultiplyAdd(TFormat.Widen512(h1.GetLower()), Vector512.LoadUnsafe(ref px, (nuint)i + 32), t2);
                    t3 = Vector512.FusedMultiplyAdd(TFormat.Widen512(h1.GetUpper()), Vector512.LoadUnsafe(ref px, (nuint)i + 48), t3);
                }
                Vector512<float> t = (t0 + t1) + (t2 + t3);
                s0 = t.GetLower() + t.GetUpper();
            }
            for (; i + 32 <= n; i += 32)
            {
                Vector256<ushort> h0 = Vector256.LoadUnsafe(ref pa, (nuint)i), h1 = Vector256.LoadUnsafe(ref pa, (nuint)i + 16);
                s0 = Vector256.FusedMultiplyAdd(TFormat.Widen(h0.GetLower()), Vector256.LoadUnsafe(ref px, (nuint)i), s0);
                s1 = Vector256.FusedMultiplyAdd(TFormat.Widen(h0.GetUpper()), Vector256.LoadUnsafe(ref px, (nuint)i + 8), s1);
                s2 = Vector256.FusedMultiplyAdd(TFormat.Widen(h1.GetLower()), Vector256.LoadUnsafe(ref px, (nuint)i + 16), s2);
                s3 = Vector256.FusedMultiplyAdd(TFormat.Widen(h1.GetUpper()), Vector256.LoadUnsafe(ref px, (nuint)i + 24), s3);
            }
            for (; i + 8 <= n; i += 8)
                s0 = Vector256.FusedMultiplyAdd(TFormat.Widen(Vector128.LoadUnsafe(ref pa, (nuint)i)), Vector256.LoadUnsafe(ref px, (nuint)i), s0);
            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++)
            sum = MathF.FusedMultiplyAdd(TFormat.ToSingle(Unsafe.Add(ref pa, i)), Unsafe.Add(ref px, i), sum);
        return sum;
    }

    /// <summary>Scalar reference for <c>DotCore</c> (F16·F32), accumulated in double.</summary>
    public static float DotReference<TFormat>(ReadOnlySpan<ushort> a, ReadOnlySpan<float> x) where TFormat : IHalfFormat
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
            sum += (double)TFormat.ToSingle(a[i]) * x[i];
        return (float)sum;
    }

    /// <summary>
    /// Σ a[i]·x[i] with both operands 16-bit, as ggml's F16·F16 (BF16·BF16) dot: each product is exact
    /// in F32, sums in four 8-lane FMA accumulators, then a scalar tail.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float DotCore<TFormat>(ReadOnlySpan<ushort> a, ReadOnlySpan<ushort> x) where TFormat : IHalfFormat
    {
        int n = a.Length, i = 0;
        ref ushort pa = ref MemoryMarshal.GetReference(a);
        ref ushort px = ref MemoryMarshal.GetReference(x);
        float sum = 0;
        if (CpuFeatures.Vector256 && n >= 8)
        {
            Vector256<float> s0 = Vector256<float>.Zero, s1 = s0, s2 = s0, s3 = s0;
            for (; i + 32 <= n; i += 32)
            {
                Vector256<ushort> a0 = Vector256.LoadUnsafe(ref pa, (nuint)i), a1 = Vector256.LoadUnsafe(ref pa, (nuint)i + 16);
                Vector256<ushort> x0 = Vector256.LoadUnsafe(ref px, (nuint)i), x1 = Vector256.LoadUnsafe(ref px, (nuint)i + 16);
                s0 = Vector256.FusedMultiplyAdd(TFormat.Widen(a0.GetLower()), TFormat.Widen(x0.GetLower()), s0);
                s1 = Vector256.FusedMultiplyAdd(TFormat.Widen(a0.GetUpper()), TFormat.Widen(x0.GetUpper()), s1);
                s2 = Vector256.FusedMultiplyAdd(TFormat.Widen(a1.GetLower()), TFormat.Widen(x1.GetLower()), s2);
                s3 = Vector256.FusedMultiplyAdd(TFormat.Widen(a1.GetUpper()), TFormat.Widen(x1.GetUpper()), s3);
            }
            for (; i + 8 <= n; i += 8)
                s0 = Vector256.FusedMultiplyAdd(TFormat.Widen(Vector128.LoadUnsafe(ref pa, (nuint)i)), TFormat.Widen(Vector128.LoadUnsafe(ref px, (nuint)i)), s0);
            sum = Vector256.Sum((s0 + s1) + (s2 + s3));
        }
        for (; i < n; i++)
            sum = MathF.FusedMultiplyAdd(TFormat.ToSingle(Unsafe.Add(ref pa, i)), TFormat.ToSingle(Unsafe.Add(ref px, i)), sum);
        return sum;
    }

    /// <summary>
    /// y[b·yStride + r] = dot(row r, activation row b) for rows of <paramref name="cols"/> 16-bit values <paramref name="rowBytes"/>
    /// apart; the activation rows are in the same 16-bit format (ggml's vec_dot_type for F16 and BF16 weights).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MultiplyRows<TFormat>(byte* rows, long rowBytes, int rowCount, int cols, byte* activations, int stride, int count,
        float* y, int yStride) where TFormat : IHalfFormat
    {
        for (int r = 0; r < rowCount; r++, rows += rowBytes)
        {
            var w = new ReadOnlySpan<ushort>(rows, cols);
            for (int b = 0; b < count; b++)
                y[b * yStride + r] = DotCore<TFormat>(w, new ReadOnlySpan<ushort>(activations + (nint)b * stride, cols));
        }
    }

    /// <summary>dst.Length values widened from the bytes of <paramref name="src"/>.</summary>
    public static void Dequantize<TFormat>(ReadOnlySpan<byte> src, Span<float> dst) where TFormat : IHalfFormat =>
        ToSingle<TFormat>(MemoryMarshal.Cast<byte, ushort>(src)[..dst.Length], dst);

    /// <summary>src rounded into the first bytes of <paramref name="dst"/>.</summary>
    public static void Quantize<TFormat>(ReadOnlySpan<float> src, Span<byte> dst) where TFormat : IHalfFormat =>
        FromSingle<TFormat>(src, MemoryMarshal.Cast<byte, ushort>(dst)[..src.Length]);
}
